"""Reviewing production images in a real browser (Debian's Chromium, driven by Playwright) against the embedded
stack: 20 sampled scenes reviewed by keyboard and by mouse (a missed object boxed by dragging), the session
resumed after a reload, the manifest written and read back by `evaluate --reviewed`; no console error; usable at
420 px. The scripted reviewer is the scenes' ground truth. And the server's security: the token, the Host, and
nothing read outside the sample."""

from __future__ import annotations

import http.client
import io
import json
import random
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferctl import cli, samples
from inferctl.console import rgb
from inferctl.emulator.stack import embedded_stack, write_state
from inferctl.evaluation.groundtruth import read_manifest
from inferctl.evaluation.matching import iou
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import configuration, review_session, uploads
from inferctl.stack.review_server import ReviewServer
from inferctl.stack.target import Target, from_outputs

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
SCENES = 24
BUDGET = 20
Truth = dict[str, list[tuple[str, tuple[float, float, float, float]]]]
IMAGE_SHOWN = "() => { const img = document.getElementById('image'); return img.complete && img.naturalWidth > 0; }"


def scenes() -> tuple[list[tuple[str, bytes]], Truth]:
    rng = random.Random(5)
    items, truth = [], {}
    names = [kind.name for kind in samples.KINDS if kind.name != "flower"]
    for index in range(SCENES):
        drawn: list[tuple[str, samples.PixelBox]] = []
        image = samples.scene(100 + index, rng.sample(names, rng.randint(1, 3)), drawn)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        key = f"review/scene-{index:02d}.jpg"
        items.append((key, buffer.getvalue()))
        width, height = samples.SIZE
        truth[key] = [(name, (x / width, y / height, w / width, h / height)) for name, (x, y, w, h) in drawn]
    return items, truth


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Truth, Path]]:
    folder = tmp_path_factory.mktemp("review")
    with embedded_stack(demo_config({"backend": "rekognition"}), demo_models(), capture_stdout=True) as stack:
        write_state(stack, folder / "embedded.json")
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        items, truth = scenes()
        uploaded = uploads.upload_many(target, items, progress=False)
        found = uploads.wait_for(target, [u.key for u in uploaded], timeout=120, progress=False)
        assert {state.state for state in found.values()} == {"ok"}
        yield target, {target.input_prefix + key: objects for key, objects in truth.items()}, folder


def verdicts(
    item: dict[str, Any], truth: Truth
) -> tuple[list[bool], list[tuple[str, tuple[float, float, float, float]]]]:
    """What a careful reviewer says: a prediction is right when it boxes an object of its label (IoU >= 0.5);
    the objects no right prediction covers were missed."""
    objects = list(truth[item["key"]])
    said = []
    for prediction in item["predictions"]:
        box = prediction["box"]
        match = next(
            (
                o
                for o in objects
                if o[0] == prediction["name"]
                and box
                and iou((box["left"], box["top"], box["width"], box["height"]), o[1]) >= 0.5
            ),
            None,
        )
        if match:
            objects.remove(match)
        said.append(match is not None)
    return said, objects


@pytest.fixture(scope="module")
def server(world: tuple[Target, Truth, Path]) -> Iterator[ReviewServer]:
    target, _, folder = world
    thresholds = configuration.live_settings(target).thresholds
    session, resumed = review_session.open_session(target, thresholds, folder / "session.json", budget=BUDGET, seed=7)
    assert not resumed
    with ReviewServer(target, session, manifest=folder / "reviewed.manifest").running() as running:
        yield running


def browser_page(playwright: Any, width: int) -> tuple[Any, Any, list[str]]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return browser, page, problems


def box_colours(page: Any) -> list[tuple[str, tuple[int, int, int]]]:
    """Each box on screen: its label and the colour it is drawn in."""
    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll('#overlay rect[data-label]'))
             .map(r => [r.dataset.label, getComputedStyle(r).stroke])"""
    )
    found = []
    for label, stroke in drawn:
        red, green, blue = (int(n) for n in re.findall(r"\d+", stroke)[:3])
        found.append((label, (red, green, blue)))
    return found


def check_colours(page: Any, server: ReviewServer, seen: dict[str, set[tuple[int, int, int]]]) -> None:
    """The boxes take their label's colour (the same as the annotated images and the report), and the legend
    names each label on screen."""
    expected = server.label_colours()
    for label, colour in box_colours(page):
        seen.setdefault(label, set()).add(colour)
        if label in expected:
            assert colour == rgb(expected[label]), label
    legend = page.locator("#labelkey").text_content()
    assert all(label in legend for label, _ in box_colours(page))


def review_one(
    page: Any, server: ReviewServer, truth: Truth, *, drag: bool, seen: dict[str, set[tuple[int, int, int]]]
) -> bool:
    """Review the image on screen: keys for the verdicts, a mouse drag for a missed object. True if one was added."""
    from playwright.sync_api import expect

    key = page.locator("#key").text_content()
    item = server.session.item(key)
    assert item is not None
    said, missed = verdicts(item, truth)
    for right in said:
        page.keyboard.press("y" if right else "n")
    added = False
    if drag and missed:
        name, (left, top, width, height) = missed[0]
        # The stage takes its height from the image: until the image is decoded the overlay is a thin strip, and a
        # drag across it draws nothing (seen on a fresh machine's first image).
        page.wait_for_function(IMAGE_SHOWN)
        stage = page.locator("#overlay").bounding_box()
        page.mouse.move(stage["x"] + left * stage["width"], stage["y"] + top * stage["height"])
        page.mouse.down()
        page.mouse.move(
            stage["x"] + (left + width / 2) * stage["width"], stage["y"] + (top + height / 2) * stage["height"]
        )
        page.mouse.move(stage["x"] + (left + width) * stage["width"], stage["y"] + (top + height) * stage["height"])
        page.mouse.up()
        page.locator("#labelname").fill(name)
        page.locator("#addok").click()
        added = True
    check_colours(page, server, seen)
    done = len(server.session.reviews)
    page.keyboard.press("Enter")
    expect(page.locator("#progress")).to_have_text(re.compile(rf"^{done + 1} of"))
    return added


def test_twenty_images_reviewed_by_keyboard_and_mouse_resumed_and_evaluated(world, server, capsys):
    _, truth, folder = world
    from playwright.sync_api import expect, sync_playwright

    added_keys: list[str] = []
    seen: dict[str, set[tuple[int, int, int]]] = {}  # each label: the colours its boxes were drawn in
    with sync_playwright() as playwright:
        browser, page, problems = browser_page(playwright, 1280)
        try:
            page.goto(server.url)
            expect(page.locator("#key")).not_to_be_empty()
            for _ in range(BUDGET // 2):
                key = page.locator("#key").text_content()
                if review_one(page, server, truth, drag=not added_keys, seen=seen):
                    added_keys.append(key)
            # closed and opened again: the session resumes where it was
            page.reload()
            expect(page.locator("#progress")).to_have_text(re.compile(rf"^{BUDGET // 2} of"))
            assert page.locator("#key").text_content() not in server.session.reviews
            for _ in range(BUDGET - BUDGET // 2):
                key = page.locator("#key").text_content()
                if review_one(page, server, truth, drag=not added_keys, seen=seen):
                    added_keys.append(key)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review-1280px.png"))
            page.locator("#finish").click()
            expect(page.locator("#message")).to_have_text(re.compile(r"^Manifest written"))
            assert problems == []
        finally:
            browser.close()

    assert added_keys, "no scene had an object the model missed: the mouse path was not exercised"
    # one colour per label on every page, and no two labels in one colour (the sample holds fewer than twelve)
    assert seen
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert len({next(iter(colours)) for colours in seen.values()}) == len(seen)
    manifest = folder / "reviewed.manifest"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    assert len(lines) == BUDGET
    truth_read = read_manifest(lines)  # what evaluate and Custom Labels read: valid Ground Truth
    assert truth_read.kind == "detection"
    for line in map(json.loads, lines):
        assert line["reviewed-metadata"]["human-annotated"] == "yes"
        assert {"stratum", "probability", "population"} <= set(line["inferctl-review"])
    # the reviewed objects are the scenes' own (the box drawn by mouse within a few pixels of the truth)
    for key in added_keys:
        boxes = truth_read.images[key].boxes
        assert any(any(iou(b, t) >= 0.8 for n2, t in truth[key] if n2 == n) for n, b in boxes)

    state = str(folder / "embedded.json")
    assert cli.main(["evaluate", "--reviewed", str(manifest), "--embedded", state, "--format", "json"]) == 0
    numbers = json.loads(capsys.readouterr().out)
    assert numbers["reviewed_images"] == BUDGET
    assert numbers["labels"]
    objects = Counter(name for image in truth_read.images.values() for name, _ in image.boxes)
    holding = Counter(name for image in truth_read.images.values() for name in {n for n, _ in image.boxes})
    for label in numbers["labels"]:
        precision = label["current"]["precision"]
        if precision["value"] is not None:
            assert precision["low"] <= precision["value"] <= precision["high"]
        # the evidence each estimate rests on: the reviewed objects of the label and the images holding one
        name = label["current"]["label"]
        assert (label["positives"], label["images_with_positives"]) == (objects[name], holding[name])
    assert numbers["min_positives"] == 10

    assert cli.main(["evaluate", "--reviewed", str(manifest), "--embedded", state]) == 0
    out, err = capsys.readouterr()
    assert "rests on" in out
    for name in objects:
        said = f"{objects[name]} positives in {holding[name]} of {BUDGET} images"
        assert said + (" (few: under 10)" if objects[name] < 10 else "") in out
    thin = sorted(name for name in {label["current"]["label"] for label in numbers["labels"]} if objects[name] < 10)
    assert (f"few reviewed objects for {', '.join(thin)} (under 10 each)" in err) == bool(thin)


def test_the_page_works_at_420_px_without_sideways_scroll(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, page, problems = browser_page(playwright, 420)
        try:
            page.goto(server.url)
            expect(page.locator("#key")).not_to_be_empty()
            page.locator("#image").wait_for(state="visible")
            assert page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")
            assert page.locator("#next").is_visible()
            # each prediction's Right and Wrong stay side by side, on one line
            pairs = page.evaluate(
                """() => Array.from(document.querySelectorAll('li.pred')).filter(li => li.querySelector('.right'))
                     .map(li => [li.querySelector('.right').getBoundingClientRect().top,
                                 li.querySelector('.wrong').getBoundingClientRect().top])"""
            )
            assert pairs
            assert all(abs(right - wrong) < 2 for right, wrong in pairs)
            check_colours(page, server, {})
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review-420px.png"), full_page=True)
            assert problems == []
        finally:
            browser.close()


def request(
    server: ReviewServer,
    path: str,
    *,
    host: str | None = None,
    method: str = "GET",
    body: Any = None,
    token: str | None = None,
) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Host": host or f"127.0.0.1:{server.port}", "Content-Type": "application/json"}
    if token is not None:
        headers["X-Review-Token"] = token
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_server_wants_its_token_its_host_and_only_the_samples_images(server):
    token = server.token
    key = server.session.items[0]["key"]
    assert request(server, f"/api/session?token={token}") == 200
    assert request(server, "/api/session") == 403  # no token
    assert request(server, "/api/session?token=wrong") == 403
    assert request(server, f"/?token={token}", host="evil.example:80") == 403  # DNS rebinding
    assert request(server, f"/api/image?token={token}&key={key}") == 200
    outside = "elsewhere/secret.jpg"
    assert request(server, f"/api/image?token={token}&key={outside}") == 403
    other = server.session.input_prefix + "not-sampled.jpg"
    assert request(server, f"/api/image?token={token}&key={other}") == 403
    bad = {"key": outside, "review": {"verdicts": [], "added": []}}
    assert request(server, "/api/review", method="POST", body=bad, token=token) == 400
    assert request(server, f"/api/review?token={token}", method="POST", body=bad) == 403  # not in the query
    assert request(server, "/api/review", method="POST", body=bad) == 403
