"""The evaluation report in a real browser (Debian's Chromium, driven by Playwright): it opens with no
network, the threshold slider redraws which boxes are kept, and the count shown is the one the data says."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from inferctl.evaluation import report
from inferctl.evaluation.evaluate import evaluate
from inferctl.evaluation.groundtruth import GroundTruth, ImageTruth
from lambdas.inference.core.thresholds import Thresholds

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"


def picture() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (90, 140, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def document(key: str, found: list[tuple[str, float, tuple[float, float, float, float]]]) -> dict[str, Any]:
    labels = [
        {"name": n, "confidence": c, "bounding_box": dict(zip(("left", "top", "width", "height"), b, strict=True))}
        for n, c, b in found
    ]
    return {
        "status": "ok",
        "source": {"key": key, "version_id": None},
        "labels": [label for label in labels if float(label["confidence"]) >= 50],  # type: ignore[arg-type]
        "candidates": [label for label in labels if float(label["confidence"]) < 50],  # type: ignore[arg-type]
        "thresholds": {"min_confidence": 50, "candidate_floor": 10},
        "image": {"transformations": []},
    }


def kept(documents: list[dict[str, Any]], threshold: float) -> int:
    return len(
        [label for d in documents for label in [*d["labels"], *d["candidates"]] if label["confidence"] >= threshold]
    )


@pytest.fixture(scope="module")
def page_of_report(tmp_path_factory: pytest.TempPathFactory):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    documents = [
        document("test_images/a.jpg", [("sun", 92, (0.1, 0.1, 0.3, 0.3)), ("tree", 64, (0.5, 0.4, 0.2, 0.5))]),
        document("test_images/b.jpg", [("sun", 71, (0.6, 0.1, 0.2, 0.2)), ("tree", 35, (0.1, 0.5, 0.3, 0.4))]),
        document("test_images/c.jpg", [("car", 18, (0.2, 0.6, 0.4, 0.2))]),
    ]
    truth = GroundTruth(
        "detection",
        {
            "test_images/a.jpg": ImageTruth(boxes=[("sun", (0.1, 0.1, 0.3, 0.3)), ("tree", (0.5, 0.4, 0.2, 0.5))]),
            "test_images/b.jpg": ImageTruth(boxes=[("sun", (0.6, 0.1, 0.2, 0.2))]),
            "test_images/c.jpg": ImageTruth(),
        },
    )
    evaluation = evaluate(documents, truth, Thresholds(50.0, candidate_floor=10.0))
    items = report.gallery(documents, truth, lambda key, version: picture())
    path = report.write(tmp_path_factory.mktemp("report") / "report.html", evaluation, items, "Test report", 50.0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri())
        try:
            yield page, documents, requests
        finally:
            browser.close()


def test_the_report_needs_no_network(page_of_report):
    _, _, requests = page_of_report
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []


def test_the_slider_redraws_the_kept_boxes_as_the_data_says(page_of_report):
    page, documents, _ = page_of_report
    assert int(page.inner_text("#kept-count")) == kept(documents, 50) == 3
    assert page.locator("rect.kept").count() == 3

    for threshold in (30, 80, 10):
        page.evaluate(
            "t => { const s = document.getElementById('threshold');"
            " s.value = t; s.dispatchEvent(new Event('input')); }",
            threshold,
        )
        assert int(page.inner_text("#kept-count")) == kept(documents, threshold)
        assert page.locator("rect.kept").count() == kept(documents, threshold)

    assert "sun" in page.inner_text("#labels")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
