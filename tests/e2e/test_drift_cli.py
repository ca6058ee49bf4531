"""``inferctl drift`` on the embedded stack: two windows of real results, what moved between them.

Before the split the pipeline sees scenes with a sun in each; after it, the same kinds of scene without one.
The command must list the sun's accepted share as moved (down), count each window's results, and leave alone a
label whose share stayed where it was."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferctl import cli, samples
from inferctl.emulator.stack import embedded_stack, write_state
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.target import Target, from_outputs
from lambdas.contract.results import iso

PER_WINDOW = 30


def scenes(window: str, with_sun: bool) -> list[tuple[str, bytes]]:
    rng = random.Random(window)
    others = ["house", "tree", "car"]
    items = []
    for index in range(PER_WINDOW):
        objects = [*rng.sample(others, 2), *(["sun"] if with_sun else [])]
        buffer = io.BytesIO()
        samples.scene(1000 * len(window) + index, objects).save(buffer, format="JPEG", quality=90)
        items.append((f"drift/{window}-{index:02d}.jpg", buffer.getvalue()))
    return items


def process(target: Target, items: list[tuple[str, bytes]]) -> None:
    uploaded = uploads.upload_many(target, items, progress=False)
    found = uploads.wait_for(target, [u.key for u in uploaded], timeout=180, progress=False)
    assert {state.state for state in found.values()} == {"ok"}


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("drift")
    with embedded_stack(demo_config({"backend": "rekognition"}), demo_models(), capture_stdout=True) as stack:
        state = folder / "embedded.json"
        write_state(stack, state)
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        process(target, scenes("before", with_sun=True))
        split = iso(datetime.now(UTC))  # every result before it is complete: wait_for saw them all
        process(target, scenes("after", with_sun=False))
        yield state, split


def test_drift_lists_the_label_that_moved_and_counts_each_window(windows, capsys):
    state, split = windows

    code = cli.main(["drift", "--embedded", str(state), "--split", split, "--days", "1", "--format", "json"])

    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["before"], report["after"]) == (PER_WINDOW, PER_WINDOW)
    moved = {(f["label"], f["measure"]): f for f in report["findings"]}
    sun = moved[("sun", "accepted share")]
    assert sun["before"] >= 0.5
    assert sun["after"] == 0
    assert sun["statistic"] > sun["critical"]
    assert not [f for f in report["findings"] if f["label"] == "house" and f["measure"] == "accepted share"]


def test_drift_prints_a_table_naming_the_test(windows, capsys):
    state, split = windows

    assert cli.main(["drift", "--embedded", str(state), "--split", split]) == 0
    out = capsys.readouterr().out
    assert f"{PER_WINDOW} results before {split}, {PER_WINDOW} after" in out
    assert "sun" in out
    assert "inferctl review" in out
