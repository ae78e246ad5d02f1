"""Generator metadata: facts read from PNG text chunks, XMP and EXIF."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from veracity.config import Settings
from veracity.provenance.metadata import read_metadata
from veracity.provenance.verify import verify_file

A1111 = "a portrait of an astronaut\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1"
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" '
    'xmp:CreatorTool="Some Generator 3"/></rdf:RDF></x:xmpmeta>'
)


def _png(path: Path, chunks: dict[str, str], itxt: dict[str, str] | None = None) -> Path:
    info = PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    for k, v in (itxt or {}).items():
        info.add_itxt(k, v)
    Image.new("RGB", (64, 64), (120, 90, 60)).save(path, pnginfo=info)
    return path


def test_automatic1111_parameters(tmp_path: Path) -> None:
    facts = read_metadata(_png(tmp_path / "a.png", {"parameters": A1111}))
    assert facts.generator == "Automatic1111 (Stable Diffusion web UI)"
    assert facts.generator_parameters and facts.generator_parameters.startswith("a portrait")
    assert facts.declares_ai and facts.text_chunks == ["parameters"]


def test_comfyui_prompt_and_workflow(tmp_path: Path) -> None:
    facts = read_metadata(_png(tmp_path / "c.png", {"prompt": '{"3": {"class_type": "KSampler"}}', "workflow": "{}"}))
    assert facts.generator == "ComfyUI"
    assert facts.text_chunks == ["prompt", "workflow"]


def test_xmp_digital_source_type(tmp_path: Path) -> None:
    path = _png(tmp_path / "x.png", {}, {"XML:com.adobe.xmp": XMP})
    facts = read_metadata(path)
    assert facts.digital_source_type == "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    assert facts.creator_tool == "Some Generator 3"
    res = verify_file(path, Settings(data_dir=tmp_path), watermarks=False)
    assert res.digital_source_type == facts.digital_source_type
    assert "metadata_declares_ai" in res.reasons and "declared_ai_generated" not in res.reasons


def test_exif_camera_fields(tmp_path: Path) -> None:
    img = Image.new("RGB", (64, 64))
    exif = img.getexif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "EOS 5D", "Firmware 1.0"
    img.save(tmp_path / "c.jpg", exif=exif)
    facts = read_metadata(tmp_path / "c.jpg")
    assert (facts.camera_make, facts.camera_model, facts.software) == ("Canon", "EOS 5D", "Firmware 1.0")
    assert facts.generator is None and not facts.declares_ai


def test_stripped_and_non_images_give_empty_facts(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32)).save(tmp_path / "plain.png")
    assert read_metadata(tmp_path / "plain.png").model_dump(exclude_defaults=True) == {}
    (tmp_path / "a.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    assert read_metadata(tmp_path / "a.wav").model_dump(exclude_defaults=True) == {}
