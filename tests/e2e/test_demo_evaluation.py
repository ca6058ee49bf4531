"""``make demo --model stand-in`` closes the loop: the generated scenes' ground truth as a Ground Truth manifest,
the evaluation of the results against it, the report. Its numbers are checked against the scenes themselves.
(The default, the real detector on photographs, is ``test_real_detector.py``.)"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from inferctl.samples import demo_samples
from inferctl.scenarios.demo.run import run_demo


def overlap(a: list[float], b: list[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w, h = min(ax2, bx2) - max(a[0], b[0]), min(ay2, by2) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_the_demo_writes_ground_truth_evaluates_against_it_and_reports(tmp_path: Path):
    out = tmp_path / "demo"
    assert run_demo(None, out, {}, timeout=90, model_name="stand-in") == 0

    samples = [sample for sample in demo_samples() if sample.objects]
    manifest = [json.loads(line) for line in (out / "ground-truth.manifest").read_text().splitlines()]
    assert len(manifest) == len(samples)
    assert all(line["bounding-box-metadata"]["type"] == "groundtruth/object-detection" for line in manifest)

    evaluation = json.loads((out / "evaluation.json").read_text())
    drawn = Counter(name for sample in samples for name, _ in sample.objects)
    by_label = {item["label"]: item for item in evaluation["labels"]}
    assert {name: item["ground_truth"] for name, item in by_label.items() if item["ground_truth"]} == dict(drawn)

    # Recount one label's recommended point by hand from the result documents and the drawn boxes.
    name = "sun"
    recommended = by_label[name]["recommended"]
    threshold = recommended["threshold"]
    hits = misses = 0
    for sample in samples:
        document = json.loads((out / "results" / (sample.key + ".json")).read_text())
        width, height = sample.size
        truths = [[b[0] / width, b[1] / height, b[2] / width, b[3] / height] for n, b in sample.objects if n == name]
        found = [
            label
            for label in [*document["labels"], *document["candidates"]]
            if label["name"] == name and label["confidence"] >= threshold
        ]
        for label in sorted(found, key=lambda item: -item["confidence"]):
            box = label["bounding_box"]
            mine = [box["left"], box["top"], box["width"], box["height"]]
            scores = [(overlap(mine, truth), index) for index, truth in enumerate(truths)]
            best = max(scores, default=(0.0, -1))
            if best[0] >= 0.5:
                hits += 1
                truths.pop(best[1])
            else:
                misses += 1
    assert (recommended["tp"], recommended["fp"], recommended["fn"]) == (hits, misses, drawn[name] - hits)

    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == len(samples)  # every scene in the gallery, inline
    assert "http" not in page.split('id="data"')[0]  # nothing fetched from a network


def test_the_demo_review_round_reviewed_by_the_scenes_truth_estimates_what_the_evaluation_measures(tmp_path: Path):
    # make demo ARGS="--review scripted": the review page's API driven by the scenes' ground truth
    out = tmp_path / "demo"
    assert run_demo(None, out, {}, timeout=90, review="scripted", model_name="stand-in") == 0

    lines = [json.loads(line) for line in (out / "review" / "reviewed.manifest").read_text().splitlines()]
    with_objects = [sample for sample in demo_samples() if sample.objects]
    assert len(lines) == len(with_objects)  # every ok result: the budget covers the demo's population
    assert all(line["inferctl-review"]["probability"] == 1.0 for line in lines)
    evaluation = {item["label"]: item for item in json.loads((out / "evaluation.json").read_text())["labels"]}
    reviewed = {
        line["reviewed-metadata"]["class-map"][str(a["class_id"])]
        for line in lines
        for a in line["reviewed"]["annotations"]
    }
    # the reviewer's objects are the scenes' objects: the labels the evaluation counts as ground truth
    assert reviewed == {name for name, item in evaluation.items() if item["ground_truth"]}
