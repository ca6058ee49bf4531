"""Decoded pixels are budgeted per execution environment: concurrent decodes never hold more than the
budget, the cost is known from the header before any byte is read, and an image that can never fit is an
error document."""

from __future__ import annotations

import threading

import pytest

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.contract.values import ObjectRef
from lambdas.inference import deadline, images
from lambdas.inference.images import headers
from lambdas.inference.images.budget import MB, MemoryBudget, budget_bytes, decode_cost
from tests.support import pictures

SAGEMAKER = images.ImageLimits(max_bytes=6 * MB, max_side=2048, native_formats=frozenset({"JPEG"}))


def test_the_budget_follows_the_functions_memory():
    assert budget_bytes(1024) == 576 * MB  # (1024 - 256 reserved) x 0.75
    assert budget_bytes(3008) == int((3008 - 256) * 0.75 * MB)
    assert budget_bytes(128) == 64 * MB  # never below the floor


def test_an_88_megapixel_rgba_png_costs_its_decoded_pixels():
    header = headers.Header("PNG", 9400, 9400, "RGBA", 1, 1)
    cost = decode_cost(header, 336_000, SAGEMAKER, verify=True)
    assert cost is not None
    decoded = 9400 * 9400 * 4
    assert decoded < cost < decoded + 100 * MB  # plus the strips, the 2048-px output's copies, the encoded bytes
    assert cost <= budget_bytes(1024)  # fits alone in a 1024 MB function; two would not
    assert 2 * cost > budget_bytes(1024)


def test_a_jpeg_is_costed_at_its_draft_scale_and_a_pass_through_at_its_bytes():
    baseline = headers.JpegLayout(False, ((2, 2), (1, 1), (1, 1)), False)
    big = headers.Header("JPEG", 8000, 6000, "RGB", 1, 1, baseline)
    cost = decode_cost(big, 9 * MB, SAGEMAKER, verify=True)
    assert cost is not None
    assert cost < 8000 * 6000 * 4 / 3  # decoded at 1/4 scale (2000 px), not in full (192 MB)
    unknown = decode_cost(headers.Header("JPEG", 8000, 6000, "RGB", 1, 1), 9 * MB, SAGEMAKER, verify=True)
    assert unknown is not None
    assert unknown - cost == 8000 * 6000 * 3 * 2  # how it is coded not known: its coefficients are reserved
    small = headers.Header("JPEG", 640, 480, "RGB", 1, 1)
    assert decode_cost(small, 50_000, SAGEMAKER, verify=False) == 50_000


def test_an_image_that_can_never_fit_is_refused_naming_the_setting():
    budget = MemoryBudget(10 * MB)
    with pytest.raises(PermanentError) as raised, budget.reserve(11 * MB, "test_images/huge.png"):
        pass
    assert raised.value.code == errors.IMAGE_TOO_LARGE
    assert "lambdaMemoryMb" in raised.value.message


def test_concurrent_reservations_never_exceed_the_budget():
    budget = MemoryBudget(100 * MB)
    finished: list[int] = []
    both_in = threading.Barrier(2)  # the first two hold their reservations together: the budget admits two

    def work(number: int) -> None:
        with budget.reserve(40 * MB, f"image {number}"):
            if number < 2:
                both_in.wait(timeout=30)
        finished.append(number)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
    for thread in threads[:2]:
        thread.start()
    for thread in threads[:2]:
        thread.join(timeout=30)
    for thread in threads[2:]:
        thread.start()
    for thread in threads[2:]:
        thread.join(timeout=30)
    assert sorted(finished) == list(range(8))
    assert budget.peak == 80 * MB  # two at a time, never a third (40 more would pass 100)
    assert budget.held == 0


def test_an_unknown_header_runs_alone():
    budget = MemoryBudget(100 * MB)
    with budget.reserve(None, "unknown"):
        assert budget.held == budget.total


class Source:
    def __init__(self, data: bytes, budget: MemoryBudget | None = None) -> None:
        self.data = data
        self.budget = budget
        self.ref = ObjectRef(bucket="b", key="test_images/x.png", size=len(data))
        self.reads: list[str] = []

    def read(self) -> bytes:
        self.reads.append("all")
        return self.data

    def read_head(self, length: int) -> bytes:
        self.reads.append("head")
        return self.data[:length]


def test_prepare_source_reads_the_header_first_and_refuses_before_reading_the_bytes():
    data = pictures.png(1500, 1500)  # 9 MB decoded
    source = Source(data, MemoryBudget(4 * MB))
    with pytest.raises(PermanentError) as raised:
        images.prepare_source(source, SAGEMAKER, verify=True)
    assert raised.value.code == errors.IMAGE_TOO_LARGE
    assert source.reads == ["head"]  # the object itself was never read


def test_prepare_source_within_the_budget():
    budget = MemoryBudget(64 * MB)
    source = Source(pictures.png(300, 200), budget)
    prepared = images.prepare_source(source, SAGEMAKER, verify=True)
    assert prepared.facts.transformations[0] == "converted_PNG_to_JPEG"
    assert 0 < budget.peak <= 64 * MB
    assert budget.held == 0


def test_a_wait_for_memory_ends_at_the_invocations_deadline():
    # GIVEN the whole budget held by a decode left running (a warm environment's frozen thread, say)
    budget = MemoryBudget(100 * MB)
    with budget.reserve(100 * MB, "the long one"), deadline.invocation(0.2), pytest.raises(TransientError) as raised:
        # WHEN another image waits for memory
        wait_for(budget, 10 * MB, "test_images/next.jpg")
    # THEN it goes back to the queue at the deadline instead of waiting past it
    assert raised.value.code == errors.OUT_OF_TIME
    assert "test_images/next.jpg" in raised.value.message
    assert budget.held == 0


def wait_for(budget: MemoryBudget, cost: int, what: str) -> None:
    with budget.reserve(cost, what):
        pass
