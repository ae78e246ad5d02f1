"""Self-blended image generator on synthetic arrays (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.media.image import jpeg_round_trip
from veracity.train.sbi import (
    augment_pair,
    colour_transform,
    deform_mask,
    degrade,
    elastic,
    geometric_transform,
    h264,
    hull_mask,
    lipsync_blend,
    lipsync_mask,
    mouth_frame,
    region_points,
    self_blend,
)

SIZE = 96


def _face() -> tuple[np.ndarray, np.ndarray]:
    """A textured square with a bright 'face' disc, and points on the disc's rim."""
    rng = np.random.default_rng(1)
    img = rng.integers(40, 90, size=(SIZE, SIZE, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    disc = (yy - 48) ** 2 + (xx - 48) ** 2 < 28**2
    img[disc] = (200, 160, 140)
    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    pts = np.stack([48 + 28 * np.cos(ang), 48 + 28 * np.sin(ang)], axis=1)
    return img, pts


def test_hull_mask_covers_the_hull_only() -> None:
    mask = hull_mask(np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]]), 64)
    assert mask.dtype == np.float32
    assert mask[30, 30] == 1.0
    assert mask[5, 5] == 0.0 and mask[60, 60] == 0.0
    assert 1500 < mask.sum() < 1800  # ~41 x 41


@pytest.mark.parametrize("points", [np.zeros((2, 2)), np.zeros((5, 3))])
def test_hull_mask_rejects_bad_points(points: np.ndarray) -> None:
    with pytest.raises(ValueError, match="points"):
        hull_mask(points, 32)


def test_deform_mask_is_soft_bounded_and_inside_out_of_reach() -> None:
    _, pts = _face()
    hard = hull_mask(pts, SIZE)
    for seed in range(8):
        soft = deform_mask(hard, np.random.default_rng(seed))
        assert soft.shape == hard.shape
        assert soft.min() >= 0.0 and soft.max() <= 1.0
        assert soft[48, 48] > 0.2  # the face centre is blended
        assert soft[0, 0] == 0.0  # far corners never are
        assert np.any((soft > 0.01) & (soft < soft.max() - 0.01))  # a soft edge, not a hard cut


def test_self_blend_changes_only_inside_the_mask() -> None:
    """When the original is the target, pixels outside the mask are untouched, inside they change."""
    img, pts = _face()
    seen = 0
    for seed in range(12):
        out, mask = self_blend(img, pts, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - img.astype(int)).sum(axis=2)
        outside = mask == 0
        assert outside.any()
        if np.all(diff[outside] == 0):  # this draw transformed the source
            seen += 1
            assert diff[mask >= 0.9 * mask.max()].mean() > 0.5
    assert seen >= 2


def test_self_blend_is_seeded() -> None:
    img, pts = _face()
    a, ma = self_blend(img, pts, np.random.default_rng(7))
    b, mb = self_blend(img, pts, np.random.default_rng(7))
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    c, _ = self_blend(img, pts, np.random.default_rng(8))
    assert not np.array_equal(a, c)


def test_blend_with_untouched_source_and_target_keeps_the_image() -> None:
    """Blending an image with an identical copy is the identity: the generator adds nothing else."""
    img, pts = _face()
    m = deform_mask(hull_mask(pts, SIZE), np.random.default_rng(0))[..., None]
    same = np.round(img * m + img * (1 - m)).astype(np.uint8)
    assert np.array_equal(same, img)


def test_transforms_keep_shape_and_range() -> None:
    img, _ = _face()
    rng = np.random.default_rng(0)
    for _ in range(5):
        c = colour_transform(img, rng)
        g = geometric_transform(img, rng)
        assert c.shape == img.shape and c.dtype == np.uint8
        assert g.shape == img.shape and g.dtype == np.uint8


def test_self_blend_rejects_non_square() -> None:
    with pytest.raises(ValueError, match="square"):
        self_blend(np.zeros((10, 12, 3), np.uint8), np.zeros((5, 2)), np.random.default_rng(0))


def test_augment_pair_applies_the_same_augmentation_to_both() -> None:
    img, _ = _face()
    for seed in range(6):
        r, f = augment_pair(img, img.copy(), np.random.default_rng(seed), 64)
        assert r.shape == (64, 64, 3)
        assert np.array_equal(r, f)  # identical inputs stay identical: no class-specific processing


def test_jpeg_round_trip_is_close() -> None:
    img, _ = _face()
    out = jpeg_round_trip(img, 95)
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 8


def _mesh_face() -> tuple[np.ndarray, np.ndarray]:
    """A 478-point 'mesh' on a disc, with the nose tip and brows where a face has them."""
    img, _ = _face()
    rng = np.random.default_rng(3)
    ang = rng.uniform(0, 2 * np.pi, 478)
    rad = 28 * np.sqrt(rng.uniform(0, 1, 478))
    pts = np.stack([48 + rad * np.cos(ang), 48 + rad * np.sin(ang)], axis=1)
    pts[1] = (48, 52)  # nose tip
    pts[105] = (38, 36)  # brows
    pts[334] = (58, 36)
    return img, pts


def test_region_points_pick_the_lower_and_inner_face() -> None:
    _, pts = _mesh_face()
    full = region_points(pts, "full")
    lower = region_points(pts, "lower")
    inner = region_points(pts, "inner")
    assert full is pts
    assert 3 <= len(lower) < len(inner) < len(pts)
    assert lower[:, 1].min() >= 48  # below the upper nose
    assert inner[:, 1].min() >= 36  # from the brows down
    few = pts[:40]
    assert region_points(few, "lower") is few  # not a MediaPipe mesh: the whole hull
    with pytest.raises(ValueError, match="region"):
        region_points(pts, "ears")


def test_lower_face_masks_leave_the_eyes_untouched() -> None:
    _, pts = _mesh_face()
    hard = hull_mask(region_points(pts, "lower"), SIZE)
    assert hard[30, 48] == 0.0 and hard[65, 48] == 1.0


def test_elastic_moves_the_edge_but_keeps_the_area_roughly() -> None:
    _, pts = _face()
    hard = hull_mask(pts, SIZE)
    warped = elastic(hard, np.random.default_rng(0), 0.05)
    assert warped.shape == hard.shape
    assert not np.array_equal(warped > 0.5, hard > 0.5)
    assert 0.7 < float((warped > 0.5).sum()) / float(hard.sum()) < 1.3
    assert np.array_equal(elastic(hard, np.random.default_rng(0), 0.0), hard)


def test_h264_round_trip_is_close_and_keeps_odd_sizes() -> None:
    img, _ = _face()
    out = h264(img, 18)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 10
    odd = h264(np.ascontiguousarray(img[:95, :95]), 30)
    assert odd.shape == (95, 95, 3)
    coarse = h264(img, 38)
    assert np.abs(coarse.astype(int) - img.astype(int)).mean() >= np.abs(out.astype(int) - img.astype(int)).mean()


def _lip_face() -> tuple[np.ndarray, np.ndarray]:
    """The mesh face with lips: corners 61/291, top 0 and bottom 17 where a mouth is."""
    img, pts = _mesh_face()
    pts[61], pts[291] = (38, 66), (58, 66)
    pts[0], pts[17] = (48, 62), (48, 71)
    return img, pts


def test_mouth_frame_reads_the_lips_of_a_mediapipe_mesh_only() -> None:
    _, pts = _lip_face()
    frame = mouth_frame(pts)
    assert frame is not None
    cx, cy, width, height = frame
    assert (cx, cy) == pytest.approx((48.0, 66.25)) and width == pytest.approx(20.0) and height == pytest.approx(9.0)
    assert mouth_frame(pts[:40]) is None


@pytest.mark.parametrize("region", ["lower", "mouth", "box"])
def test_lipsync_masks_cover_the_mouth_and_not_the_eyes(region: str) -> None:
    _, pts = _lip_face()
    mask = lipsync_mask(pts, SIZE, region)
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
    assert mask[66, 48] == 1.0  # the mouth
    assert mask[:36].sum() == 0.0  # brows and above: never pasted
    with pytest.raises(ValueError, match="region"):
        lipsync_mask(pts, SIZE, "ears")


def test_lipsync_mask_without_a_mesh_is_the_lower_half_of_the_points() -> None:
    _, pts = _face()  # 40 rim points, no MediaPipe indices
    mask = lipsync_mask(pts, SIZE, "mouth")
    assert mask[70, 48] == 1.0 and mask[30, 48] == 0.0


def test_lipsync_blend_changes_the_lower_face_only_and_is_seeded() -> None:
    img, pts = _lip_face()
    textured = img.copy()
    textured[::2, ::2] = np.clip(textured[::2, ::2].astype(int) + 40, 0, 255).astype(np.uint8)  # detail to lose
    changed = 0
    for seed in range(10):
        out, mask = lipsync_blend(textured, pts, np.random.default_rng(seed))
        assert out.shape == textured.shape and out.dtype == np.uint8
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        diff = np.abs(out.astype(int) - textured.astype(int)).sum(axis=2)
        assert diff[:24].sum() == 0  # the eyes and forehead are the frame's own
        assert np.all(diff[mask == 0] == 0)  # outside the mask nothing moves
        changed += int(diff[60:72, 42:54].mean() > 5)  # the mouth is re-rendered
    assert changed >= 8
    a, _ = lipsync_blend(textured, pts, np.random.default_rng(3))
    b, _ = lipsync_blend(textured, pts, np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_lipsync_blend_rejects_non_square() -> None:
    with pytest.raises(ValueError, match="square"):
        lipsync_blend(np.zeros((10, 12, 3), np.uint8), np.zeros((5, 2)), np.random.default_rng(0))


def test_degrade_blurs_and_noises() -> None:
    img, _ = _face()
    assert np.array_equal(degrade(img, 0.0, None), img)
    blurred = degrade(img, 1.2, None)
    assert blurred.shape == img.shape and blurred.dtype == np.uint8
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < np.abs(np.diff(img.astype(int), axis=1)).mean()
    noise = np.full(img.shape, 3.0, np.float32)
    assert np.array_equal(degrade(img, 0.0, noise), np.clip(img.astype(int) + 3, 0, 255).astype(np.uint8))


def test_augment_pair_degrades_both_alike_and_keeps_v2_draws_without_it() -> None:
    img, _ = _face()
    for seed in range(6):
        r, f = augment_pair(img, img.copy(), np.random.default_rng(seed), 64, degrade_p=1.0)
        assert np.array_equal(r, f)  # blur and the noise field are shared by the pair
        old = augment_pair(img, img.copy(), np.random.default_rng(seed), 64)
        same = augment_pair(img, img.copy(), np.random.default_rng(seed), 64, degrade_p=0.0)
        assert np.array_equal(old[0], same[0])


def test_hull_mask_on_a_frame_is_height_by_width() -> None:
    pts = np.array([[10.0, 5.0], [70.0, 5.0], [70.0, 25.0], [10.0, 25.0]])
    mask = hull_mask(pts, (80, 30))
    assert mask.shape == (30, 80)
    assert mask[15, 40] == 1 and mask[2, 40] == 0 and mask[15, 75] == 0
