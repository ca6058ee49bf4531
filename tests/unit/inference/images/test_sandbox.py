"""The bounded child: images whose cost the budget cannot know exactly are decoded in a child process that cannot
hold more than its reservation; what goes wrong in it (memory, time, a crash) is that image's outcome alone."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.contract.values import ObjectRef
from lambdas.inference import deadline, images
from lambdas.inference.images import prepare
from lambdas.inference.images.budget import MB, MemoryBudget, decode_cost
from lambdas.inference.images.sandbox import Job, OutOfMemory, Sandbox, Stopped
from tests.support import bigphotos, pictures

SAGEMAKER = images.ImageLimits(max_bytes=6 * MB, max_side=2048, native_formats=frozenset({"JPEG"}))


class Source:
    def __init__(self, data: bytes, budget: MemoryBudget, name: str = "x.tif") -> None:
        self.data, self.budget = data, budget
        self.ref = ObjectRef(bucket="b", key=f"test_images/{name}", size=len(data))
        self.reads = 0

    def read(self) -> bytes:
        self.reads += 1
        return self.data

    def read_head(self, length: int) -> bytes:
        return self.data[:length]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    helper = Sandbox()
    yield helper
    helper.close()


def in_child(job: Job, data: bytes, seconds: float = 30, before: Callable[[Job], None] = lambda job: None) -> Any:
    job.describe(data, 30)
    before(job)
    return job.prepare(SAGEMAKER, verify=True, seconds=seconds)


def test_an_image_that_outgrows_its_bound_is_too_large_and_the_helper_carries_on(sandbox):
    data = bigphotos.tiff(4000, 3000, samples=4, depth=16, layout="one-strip")  # ~138 MB to decode

    with sandbox.job(40 * MB) as job, pytest.raises(OutOfMemory) as raised:
        in_child(job, data)

    assert raised.value.code == errors.IMAGE_TOO_LARGE
    with sandbox.job(400 * MB) as job:  # the next image is unaffected
        prepared = in_child(job, data)
    assert prepared.facts.format == "TIFF"
    assert job.held is not None
    assert 0 < job.held <= 400 * MB


def test_a_child_stopped_at_its_deadline_is_killed(sandbox):
    data = bigphotos.tiff(6000, 4000, layout="one-strip")
    with sandbox.job(600 * MB) as job, pytest.raises(Stopped):
        in_child(job, data, seconds=0.001)
    assert job.pid is not None
    assert gone(job.pid), "the stopped child is still running"


def gone(pid: int, timeout: float = 10.0) -> bool:
    """The process has ended and been reaped (a condition waited on, not a time)."""
    stop, waited = threading.Event(), 0.0
    while waited < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stop.wait(0.01)
        waited += 0.01
    return False


def test_a_decoder_that_crashes_is_the_images_outcome(sandbox):
    data = bigphotos.tiff(6000, 4000, layout="one-strip")

    def crash(job: Job) -> None:
        assert job.pid is not None
        os.kill(job.pid, signal.SIGSEGV)  # as a decoder's unchecked allocation would

    with sandbox.job(600 * MB) as job, pytest.raises(PermanentError) as raised:
        in_child(job, data, before=crash)
    assert raised.value.code == errors.IMAGE_UNREADABLE
    assert "crashed" in raised.value.message


def test_a_killed_helper_is_started_again(sandbox):
    with sandbox.job(64 * MB) as job:
        job.describe(pictures.encode(pictures.picture(300, 200), "TIFF"), 30)
    assert sandbox._helper is not None
    sandbox._helper.kill()
    sandbox._helper.wait()
    with sandbox.job(64 * MB) as job:
        header = job.describe(pictures.encode(pictures.picture(300, 200), "TIFF"), 30)
    assert (header.format, header.width) == ("TIFF", 300)


def test_formats_other_than_jpeg_and_png_are_decoded_in_the_child_with_what_it_held():
    budget = MemoryBudget(576 * MB)
    prepared = prepare.prepare_source(Source(bigphotos.webp(3000, 2000), budget, "x.webp"), SAGEMAKER, verify=True)
    facts = prepared.facts
    assert facts.decoded_in == "child"
    assert facts.decode_held is not None
    assert facts.decode_reserved is not None
    assert 0 < facts.decode_held <= facts.decode_reserved  # the estimate held: no retry
    assert budget.held == 0


def test_a_small_jpeg_is_decoded_in_the_function_itself():
    budget = MemoryBudget(576 * MB)
    prepared = prepare.prepare_source(Source(pictures.jpeg(1600, 1200), budget, "x.jpg"), SAGEMAKER, verify=True)
    assert prepared.facts.decoded_in == "function"


def test_an_estimate_that_falls_short_gets_the_whole_budget_once(monkeypatch):
    # GIVEN an estimate a tenth of what the TIFF really holds
    real = decode_cost
    monkeypatch.setattr(prepare, "decode_cost", lambda *args, **kwargs: (real(*args, **kwargs) or 0) // 10)
    budget = MemoryBudget(576 * MB)
    data = bigphotos.tiff(4000, 3000, samples=4, depth=16, layout="one-strip")

    prepared = prepare.prepare_source(Source(data, budget), SAGEMAKER, verify=True)

    # THEN the child ran out of its bound, and the image was prepared again with all there is
    assert prepared.facts.decode_reserved is not None
    assert prepared.facts.decode_reserved > 400 * MB
    assert budget.held == 0


def test_a_decode_longer_than_half_an_invocation_is_too_large_and_one_cut_short_comes_back(monkeypatch):
    data = bigphotos.tiff(6000, 4000, layout="one-strip")
    monkeypatch.setattr(prepare, "DECODE_SECONDS", 0.001)  # outside an invocation, the cap is this
    with pytest.raises(PermanentError) as raised:
        prepare.prepare_source(Source(data, MemoryBudget(576 * MB)), SAGEMAKER, verify=True)
    assert raised.value.code == errors.IMAGE_TOO_LARGE
    assert "to decode" in raised.value.message

    monkeypatch.setattr(prepare, "DECODE_SHARE", 10.0)  # half the invocation is more than it has left
    with deadline.invocation(0.3), pytest.raises(TransientError) as cut:
        prepare.prepare_source(Source(data, MemoryBudget(576 * MB)), SAGEMAKER, verify=True)
    assert cut.value.code == errors.OUT_OF_TIME


def test_a_webps_header_is_never_opened_in_the_functions_process(monkeypatch):
    # libwebp allocates the whole canvas, twice, when Pillow opens a WebP: its size comes from the first chunk
    data = bigphotos.webp(9450, 9450, metadata=320 * 1024)

    def refuse(*args: object, **kwargs: object) -> Image.Image:
        raise AssertionError("Pillow opened a WebP in the function's process")

    monkeypatch.setattr(Image, "open", refuse)
    header = images.read_header(data[: images.HEADER_BYTES], complete=False)
    assert header is not None
    assert (header.format, header.width, header.height, header.orientation) == ("WEBP", 9450, 9450, None)
    with pytest.raises(PermanentError) as raised:
        prepare.prepare_source(Source(data, MemoryBudget(576 * MB), "x.webp"), SAGEMAKER, verify=True)
    assert raised.value.code == errors.IMAGE_TOO_LARGE  # refused from its header: nothing was decoded


def test_a_png_whose_pixels_start_past_the_first_bytes_is_costed_from_its_ihdr():
    data = bigphotos.png(13300, 13300, "RGBA", metadata=70 * 1024)
    header = images.read_header(data[: images.HEADER_BYTES], complete=False)
    assert header is not None
    assert (header.width, header.height, header.mode, header.settled) == (13300, 13300, "RGBA", False)
    with pytest.raises(PermanentError) as raised:
        prepare.prepare_source(Source(data, MemoryBudget(1024 * MB), "x.png"), SAGEMAKER, verify=True)
    assert raised.value.code == errors.IMAGE_TOO_LARGE


def test_page_counting_stops_early_and_says_so():
    data = bigphotos.tiff(64, 64, pages=5000)
    prepared = images.prepare_read(lambda: data, SAGEMAKER, verify=True)
    assert "first_frame_of_more_than_1000" in prepared.facts.transformations
    assert Image.open(io.BytesIO(data)).format == "TIFF"
