"""The embedded stack's real detector (OpenCV's Haar cascades, ``inferctl/emulator/models/cascade.py``) on real
photographs (``inferctl/photos``), through the real handler and both backends' emulations:

- what it accepts at the default threshold is what a person sees in each photo (each accepted box overlaps a
  hand-drawn one by IoU >= 0.5), and what it cannot see (a face in profile, a cat's face larger than the frame)
  it does not invent; a coffee cup and a rocket get no label;
- SageMaker's and Rekognition's emulations give the same labels, confidences and boxes for the same photo;
- ``make demo``'s evaluation table is computed from those photographs' ground truth.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from inferctl.emulator.models import cascade
from inferctl.emulator.models.base import DETECTOR_ID
from inferctl.emulator.stack import embedded_stack
from inferctl.photos import TRUTH, photo_samples
from inferctl.scenarios.demo.run import demo_config, demo_models, run_demo
from inferctl.stack import uploads
from inferctl.stack.target import from_outputs

# What a person agrees the detector should say at the default threshold, per photo (accepted labels).
AGREED = {
    "astronaut.jpg": Counter({"face": 1, "eye": 2}),
    "grace_hopper.jpg": Counter({"face": 1, "eye": 1}),  # one eye behind her glasses is missed
    "camera.jpg": Counter(),  # a face in profile: a frontal-face cascade does not find it
    "chelsea.jpg": Counter(),  # the cat's face is larger than the frame
    "coffee.jpg": Counter(),
    "rocket.jpg": Counter(),
}


def as_a_phone() -> bytes:
    """The astronaut as a phone stores a portrait: pixels turned a quarter, EXIF Orientation 6 with its maker."""
    import io
    from importlib import resources

    with Image.open(io.BytesIO(resources.files("inferctl.photos").joinpath("astronaut.jpg").read_bytes())) as photo:
        stored = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = 6, "Canon", "Canon EOS 5D"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return 0.0 if w <= 0 or h <= 0 else w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def results(backend: str, folder: Path) -> dict[str, dict[str, Any]]:
    config = demo_config({"backend": backend}, cascade.CLASS_NAMES, DETECTOR_ID)
    with embedded_stack(config, demo_models(cascade.detect, DETECTOR_ID), log_path=folder / f"{backend}.log") as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        items = [(sample.key, sample.data) for sample in photo_samples()] + [("phone/astronaut.jpg", as_a_phone())]
        sent = uploads.upload_many(target, items, progress=False)
        found = uploads.wait_for(target, [u.key for u in sent], timeout=120, progress=False)
    documents = {}
    for key, state in found.items():
        if key.endswith("phone/astronaut.jpg"):
            key = "phone-astronaut.jpg"
        assert state.state == "ok", (key, state)
        assert state.document is not None
        documents[key.rsplit("/", 1)[-1]] = state.document
    return documents


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("detector")
    return {backend: results(backend, folder) for backend in ("sagemaker", "rekognition")}


@pytest.mark.parametrize("backend", ["sagemaker", "rekognition"])
def test_what_it_accepts_is_what_a_person_sees(both, backend):
    sizes = {sample.key.rsplit("/", 1)[-1]: sample.size for sample in photo_samples()}
    for name, document in both[backend].items():
        if name == "phone-astronaut.jpg":
            continue  # test_a_phones_portrait_is_seen_upright
        accepted = Counter(label["name"] for label in document["labels"])
        assert accepted == AGREED[name], name
        assert DETECTOR_ID in document["model"]["model_id"]  # the result says which model saw it: the real detector
        width, height = sizes[name]
        for label in document["labels"]:
            box = label["bounding_box"]
            mine = (box["left"], box["top"], box["width"], box["height"])
            drawn = [
                (x / width, y / height, w / width, h / height) for n, (x, y, w, h) in TRUTH[name] if n == label["name"]
            ]
            assert max(iou(mine, truth) for truth in drawn) >= 0.5, (name, label)


@pytest.mark.parametrize("backend", ["sagemaker", "rekognition"])
def test_a_phones_portrait_is_seen_upright(both, backend):
    """A photo stored sideways with EXIF Orientation 6 (what cameras write) gets the upright photo's labels and
    boxes (not confidences: its pixels were encoded twice): the function turns it before either backend sees it."""

    def labels(document: dict[str, Any]) -> list[tuple[Any, ...]]:  # confidences move with the re-encoding
        found = document["labels"]
        return sorted((label["name"], *(round(v, 2) for v in label["bounding_box"].values())) for label in found)

    phone = both[backend]["phone-astronaut.jpg"]
    assert "exif_orientation_6_applied" in phone["image"]["transformations"]
    assert labels(phone) == labels(both[backend]["astronaut.jpg"])


def test_both_backends_give_the_same_labels(both):
    def seen(document: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted(
            (label["name"], round(label["confidence"], 2), *(round(v, 3) for v in label["bounding_box"].values()))
            for label in [*document["labels"], *document["candidates"]]
        )

    assert {n: seen(d) for n, d in both["sagemaker"].items()} == {n: seen(d) for n, d in both["rekognition"].items()}


def test_the_demos_evaluation_comes_from_the_photographs(tmp_path):
    out = tmp_path / "demo"
    assert run_demo(None, out, {}, timeout=120) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    truth = Counter(name for objects in TRUTH.values() for name, _ in objects)
    assert {item["label"]: item["ground_truth"] for item in evaluation["labels"] if item["ground_truth"]} == truth
    assert evaluation["images_evaluated"] == len(TRUTH)
    manifest = (out / "ground-truth.manifest").read_text().splitlines()
    assert len(manifest) == len(TRUTH)  # the photographs with nothing in them count too

    # one colour per label: the report's and the annotated pictures' are the same, and no two labels share one
    page = (out / "report.html").read_text()
    data = json.loads(page.split('<script id="data" type="application/json">', 1)[1].split("</script>", 1)[0])
    colours = data["colours"]
    assert len(set(colours.values())) == len(colours)
    with Image.open(out / "annotated" / "photos" / "astronaut.jpg.png") as annotated:
        pixels = Counter(annotated.convert("RGB").getdata())
    for name in ("face", "eye"):
        code = colours[name]
        assert pixels[(int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16))] > 50, name
