"""The embedded stack with the Rekognition backend: the unchanged adapter against the local
DetectCustomLabels endpoint, which reads S3Object images from the emulator's S3."""

from __future__ import annotations

from pathlib import Path

from inferctl.emulator.stack import embedded_stack
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.target import from_outputs
from tests.support import pictures


def test_rekognition_backend_end_to_end_by_reference_and_by_bytes(tmp_path: Path):
    config = demo_config({"backend": "rekognition"})
    items = {
        "by reference.jpg": pictures.jpeg(640, 480),
        "converted.webp": pictures.encode(pictures.picture(400, 300), "WEBP"),
        "phone.jpg": pictures.exif_rotated_jpeg(320, 200, orientation=6),
        "tiny.png": pictures.png(20, 20),
    }
    with embedded_stack(config, demo_models(), log_path=tmp_path / "lambda.log") as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        sent = uploads.upload_many(target, list(items.items()), progress=False)
        found = uploads.wait_for(target, [u.key for u in sent], timeout=60, progress=False)

    documents = {key[len(config.input_prefix) :]: outcome.document for key, outcome in found.items()}
    assert all(document is not None for document in documents.values())
    by_reference = documents["by reference.jpg"]
    assert by_reference is not None
    assert by_reference["model"]["backend"] == "rekognition"
    assert by_reference["image"]["sent_as"] == "s3_object"
    assert (by_reference["image"]["width"], by_reference["image"]["height"]) == (640, 480)
    converted = documents["converted.webp"]
    assert converted is not None
    assert converted["image"]["sent_as"] == "bytes"
    phone = documents["phone.jpg"]
    assert phone is not None
    assert "exif_orientation_6_applied" in phone["image"]["transformations"]
    tiny = documents["tiny.png"]
    assert tiny is not None
    assert tiny["error"]["code"] == "IMAGE_TOO_SMALL"


def test_the_demo_gives_every_image_suffix_in_any_letter_case_its_outcome(tmp_path: Path):
    from inferctl.scenarios.demo.run import run_demo

    folder = tmp_path / "camera"
    folder.mkdir()
    names = ["IMG_0001.Jpg", "scan.jPeG", "Screen Shot.Png", "lower.jpg", "UPPER.JPG"]
    for name in names:
        (folder / name).write_bytes(pictures.jpeg(200, 150) if "png" not in name.lower() else pictures.png(200, 150))
    out = tmp_path / "out"

    assert run_demo(folder, out, {}, timeout=60) == 0

    written = {path.name for path in (out / "results").iterdir()}
    assert written == {name + ".json" for name in names}
