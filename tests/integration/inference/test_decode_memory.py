"""The decode budget is a model of what each decoder really holds, checked against measurement: every image of
the corpus (progressive, multi-scan, interlaced, multi-page and plain codings) is prepared in a fresh process
with the stack's glibc setting, the way the function takes it (in its own process, or in the bounded child), and
what it held at its peak must stay within what the budget reserved for it, without the reservation being
absurdly larger (which would cost concurrency). In the function's own process the estimate is all there is; in
the child it is what the hard bound allows before one retry with the whole budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.contract import errors
from lambdas.contract.settings import platform_environment
from lambdas.inference.images.budget import MB
from tests.support import corpus
from tests.support.paths import ROOT

# Where both backends decode: SageMaker (2048 px) for every entry; Rekognition's bytes path (4096 px) where
# the larger output changes what is held.
CASES = [(entry, "sagemaker") for entry in corpus.entries()] + [
    (entry, "rekognition")
    for entry in corpus.entries()
    if entry.name in ("jpeg-progressive-444", "jpeg-multi-scan-444", "png-rgba-large", "webp-alpha", "gif")
]
NOT_DECODABLE = {"jpeg-arithmetic-progressive": (errors.IMAGE_UNREADABLE, errors.IMAGE_UNSUPPORTED)}


def measure(path: Path, limits: str) -> dict[str, object]:
    env = {**os.environ, **platform_environment(tracing=False, max_attempts=3), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.support.decode_child", str(path), limits],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(("entry", "limits"), CASES, ids=[f"{e.name}-{limits}" for e, limits in CASES])
def test_what_an_image_holds_stays_within_what_the_budget_reserved(entry: corpus.Entry, limits: str):
    result = measure(corpus.path(entry), limits)

    outcome, cost, peak = result["outcome"], result["cost"], result["peak"]
    assert isinstance(peak, int)
    if entry.name in NOT_DECODABLE:
        assert outcome in NOT_DECODABLE[entry.name]
        return
    assert outcome == "ok", result
    assert isinstance(cost, int), result
    assert result["route"] in ("function", "child")
    assert peak <= cost, f"{entry.name}: held {peak / MB:.0f} MB, the budget reserved {cost / MB:.0f} MB"
    assert cost <= 4 * peak + 32 * MB, f"{entry.name}: reserved {cost / MB:.0f} MB for {peak / MB:.0f} MB"


def test_the_corpus_has_every_family_the_issue_names():
    families = {entry.family for entry in corpus.entries()}
    assert {"progressive", "multi-scan", "interlaced", "multi-page", "plain"} <= families
