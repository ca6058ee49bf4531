"""A bulk upload 50 times what the model takes in a second (250 images against 5 calls per second), with the
default settings (one Rekognition inference unit): no healthy image is dead-lettered, every image has its
outcome. ``make bench`` row 5b runs the same with 1,000 images."""

from __future__ import annotations

from pathlib import Path

from inferctl.scenarios.burst import run


def test_a_burst_of_250_images_against_5_calls_per_second_dead_letters_nothing(tmp_path: Path):
    report = run(count=250, per_second=5.0, out=tmp_path, timeout=900, progress=False)

    print(report.as_dict())  # the throttled ratio and the wall time, in the test log
    assert report.outcomes == {"ok": 250}
    assert report.dead_letters == 0
    assert report.environments == 2  # maxConcurrency derived from 1 unit x 5 TPS, as the stack derives it
    # Each environment keeps to 2.5 calls/s: the model is not overrun (a few throttles at the edges are
    # absorbed by botocore's retries and the records' back-off).
    assert report.throttled_ratio < 0.05
    assert report.seconds >= 250 / 5.0  # it cannot go faster than the model
