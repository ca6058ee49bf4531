"""The evaluation report in a real browser (Debian's Chromium, driven by Playwright), at a desktop width and at
a phone's: it opens with no network and no console error; the curves have axes with ticks and units, a
legend, both the recommended and the current point (also where they coincide), the challenger's curve, and a
note where a curve cannot be drawn; the gallery's boxes carry their label, with a colour legend; the
comparison's thumbnails carry both models' boxes; the threshold slider keeps the boxes the data says; nothing
scrolls sideways. Screenshots of both widths are kept in out/test-artifacts."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from inferctl.evaluation import report
from inferctl.evaluation.compare import advice, compare
from inferctl.evaluation.evaluate import evaluate
from inferctl.evaluation.groundtruth import GroundTruth, ImageTruth
from lambdas.contract.thresholds import Thresholds

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
WIDTHS = (1280, 420)
Found = list[tuple[str, float, tuple[float, float, float, float]]]


def picture() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (90, 140, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def labels_of(found: Found) -> list[dict[str, Any]]:
    return [
        {"name": n, "confidence": c, "bounding_box": dict(zip(("left", "top", "width", "height"), b, strict=True))}
        for n, c, b in found
    ]


def document(key: str, found: Found, challenger: Found) -> dict[str, Any]:
    labels, theirs = labels_of(found), labels_of(challenger)
    return {
        "status": "ok",
        "source": {"key": key, "version_id": None},
        "model": {"backend": "rekognition", "model_id": "arn:aws:rekognition:us-east-1:1:project/p/version/v1/1"},
        "timing": {"backend_latency_ms": 40.0},
        "labels": [label for label in labels if label["confidence"] >= 50],
        "candidates": [label for label in labels if label["confidence"] < 50],
        "thresholds": {"min_confidence": 50, "candidate_floor": 10},
        "image": {"transformations": []},
        "challenger": {
            "status": "ok",
            "backend": "sagemaker",
            "model_id": "shapes-v2",
            "latency_ms": 25.0,
            "labels": [label for label in theirs if label["confidence"] >= 50],
            "candidates": [label for label in theirs if label["confidence"] < 50],
        },
    }


DOCUMENTS = [
    document(
        "test_images/a.jpg",
        [("sun", 92, (0.1, 0.1, 0.3, 0.3)), ("tree", 64, (0.5, 0.4, 0.2, 0.5))],
        [("sun", 81, (0.1, 0.1, 0.3, 0.3))],
    ),
    document(
        "test_images/b.jpg",
        [("sun", 71, (0.6, 0.1, 0.2, 0.2)), ("tree", 35, (0.1, 0.5, 0.3, 0.4))],
        [("sun", 66, (0.6, 0.1, 0.2, 0.2)), ("tree", 55, (0.1, 0.5, 0.3, 0.4))],
    ),
    document("test_images/c.jpg", [("car", 18, (0.2, 0.6, 0.4, 0.2))], []),
]
TRUTH = GroundTruth(
    "detection",
    {
        "test_images/a.jpg": ImageTruth(boxes=[("sun", (0.1, 0.1, 0.3, 0.3)), ("tree", (0.5, 0.4, 0.2, 0.5))]),
        "test_images/b.jpg": ImageTruth(boxes=[("sun", (0.6, 0.1, 0.2, 0.2)), ("lake", (0.0, 0.7, 0.5, 0.3))]),
        "test_images/c.jpg": ImageTruth(),
    },
)


def kept(documents: list[dict[str, Any]], threshold: float) -> int:
    return len(
        [label for d in documents for label in [*d["labels"], *d["candidates"]] if label["confidence"] >= threshold]
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    thresholds = Thresholds(50.0, candidate_floor=10.0)
    evaluation = evaluate(DOCUMENTS, TRUTH, thresholds)
    comparison = compare(DOCUMENTS, TRUTH, thresholds)
    assert comparison is not None
    assert comparison.disagreements
    compared = report.with_pictures(
        {**comparison.as_dict(), "advice": advice(comparison)}, DOCUMENTS, lambda key, version: picture()
    )
    items = report.gallery(DOCUMENTS, TRUTH, lambda key, version: picture())
    folder = tmp_path_factory.mktemp("report")
    return report.write(folder / "report.html", evaluation, items, "Test report", 50.0, compared)


@pytest.fixture(scope="module", params=WIDTHS, ids=[f"{width}px" for width in WIDTHS])
def page_of_report(request: pytest.FixtureRequest, written: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    width: int = request.param
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": width, "height": 900})
        requests: list[str] = []
        problems: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(written.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{width}px.png"), full_page=True)
        try:
            yield page, requests, problems
        finally:
            browser.close()


def test_no_network_no_console_error_and_no_sideways_scroll(page_of_report):
    page, requests, problems = page_of_report
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert problems == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_every_table_cell_is_on_screen_nothing_scrolls_inside(page_of_report):
    """At a phone's width the per-label table stacks its rows: F1, the counts and the current threshold stay on
    screen, each named by its column, and no box scrolls sideways inside the page."""
    page, _, _ = page_of_report
    hidden = page.evaluate(
        """() => Array.from(document.querySelectorAll('#labels td, #models td')).filter(td => {
             const r = td.getBoundingClientRect();
             return r.width > 0 && (r.left < 0 || r.right > window.innerWidth + 1);
           }).map(td => td.textContent)"""
    )
    assert hidden == []
    inner = page.evaluate(
        "() => Array.from(document.querySelectorAll('.wide')).filter(w => w.scrollWidth > w.clientWidth + 1).length"
    )
    assert inner == 0
    labels = page.evaluate("() => Array.from(document.querySelectorAll('#labels td')).map(td => td.dataset.label)")
    assert "F1" in labels
    assert "at the current threshold" in labels


def test_curves_have_axes_with_ticks_and_units_and_a_legend(page_of_report):
    page, _, _ = page_of_report
    for curve in page.locator(".curve").all():
        ticks = curve.locator("text.tick").all_text_contents()  # SVG text has no inner text
        assert {"0%", "25%", "50%", "75%", "100%"} <= set(ticks)
        assert curve.locator("text.axis-title").all_text_contents() == ["recall (%)", "precision (%)"]
    legend = page.inner_text("#curve-legend")
    for entry in ("recommended threshold", "current threshold", "challenger"):
        assert entry in legend
    assert page.locator("#legend-challenger").is_visible()


def test_recommended_and_current_points_both_show_even_where_they_coincide(page_of_report):
    page, _, _ = page_of_report
    sun = page.locator('.curve[data-label="sun"]')
    dot, ring = sun.locator(".recommended-point").bounding_box(), sun.locator(".current-point").bounding_box()
    assert dot
    assert ring
    # Here the current threshold (50) keeps what the recommendation keeps: the same point, drawn as a ring
    # around the dot, so both are seen.
    assert abs((dot["x"] + dot["width"] / 2) - (ring["x"] + ring["width"] / 2)) < 1
    assert ring["width"] > dot["width"] + 4


def test_a_curve_that_cannot_be_drawn_says_why(page_of_report):
    page, _, _ = page_of_report
    car = page.locator('.curve[data-label="car"]')  # predicted, never in the ground truth
    assert car.locator("polyline").count() == 0
    assert "never shows this label" in car.locator(".note.empty").inner_text()
    lake = page.locator('.curve[data-label="lake"]')  # in the ground truth, never predicted
    assert lake.locator("polyline").count() == 0
    notes = lake.locator(".note.empty").all_inner_texts()
    assert "never predicted this label" in notes[0]
    assert notes[1].startswith("The challenger has no curve here either")


def test_the_challenger_has_its_curves(page_of_report):
    page, _, _ = page_of_report
    assert page.locator('.curve[data-label="sun"] polyline.challenger').count() == 1
    assert page.locator('.curve[data-label="sun"] polyline.curve-line:not(.challenger)').count() == 1


def test_gallery_boxes_carry_their_label_with_a_colour_legend(page_of_report):
    page, _, _ = page_of_report
    tags = page.locator("#gallery .tag").all_inner_texts()
    assert sorted(tags) == ["sun 71%", "sun 92%", "tree 64%"]  # kept at the current 50%
    legend = page.locator("#colour-legend .legend-entry").all_inner_texts()
    for name in ("sun", "tree", "car", "lake"):
        assert name in legend
    assert any("ground truth" in entry for entry in legend)
    colours = page.evaluate(
        "Array.from(document.querySelectorAll('#colour-legend .swatch:not(.truth)')).map(s => s.style.borderColor)"
    )
    assert len(set(colours)) == len(colours)  # one colour per label


def test_comparison_thumbnails_carry_both_models_boxes(page_of_report):
    page, _, _ = page_of_report
    cards = page.locator("#disagreements .disagreement")
    assert cards.count() >= 1
    first = cards.first
    assert first.locator("img").count() == 1
    assert first.locator("rect.primary-box").count() >= 1
    assert first.locator("rect.challenger-box").count() >= 1
    assert "challenger:" in " ".join(first.locator(".tag").all_inner_texts())
    assert "F1" in page.inner_text("#agreement")  # the advice states its metric and counts


def test_the_slider_redraws_the_kept_boxes_as_the_data_says(page_of_report):
    page, _, _ = page_of_report
    assert int(page.inner_text("#kept-count")) == kept(DOCUMENTS, 50) == 3
    assert page.locator("#gallery rect.kept").count() == 3
    for threshold in (30, 80, 10, 50):
        page.evaluate(
            "t => { const s = document.getElementById('threshold');"
            " s.value = t; s.dispatchEvent(new Event('input')); }",
            threshold,
        )
        assert int(page.inner_text("#kept-count")) == kept(DOCUMENTS, threshold)
        assert page.locator("#gallery rect.kept").count() == kept(DOCUMENTS, threshold)
        assert page.locator("#gallery .tag").count() == kept(DOCUMENTS, threshold)
    assert (ARTIFACTS / f"report-{page.viewport_size['width']}px.png").stat().st_size > 10_000
