"""Preparing an image within the execution environment's memory, with a hard bound where its cost cannot be known.

The header comes first (the object's first 64 KB, read without decoding), so the cost is known before the bytes
are. Then one of three ways:

- **as it is**: a JPEG or PNG the backend takes untouched and that needs no check costs its bytes;
- **in the function's process**: a JPEG or PNG whose whole file says what its first bytes said, and whose cost is
  at most a quarter of the budget (``in_process_limit``): these decoders are measured, and their cost is exact
  (test_decode_memory);
- **in a bounded child** (``sandbox.py``): everything else. The child opens the whole file and says what it
  really is before a pixel is decoded; the reservation follows what it says (read again if it must grow), and
  nothing the child does can hold more than the reservation. An image that needs more than the whole budget is
  ``IMAGE_TOO_LARGE``; one that takes longer than half an invocation to decode too.

Pillow never opens anything but a JPEG or a PNG in the function's own process: other readers allocate on opening
(libwebp its whole canvas, twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.inference import deadline, source_queue
from lambdas.inference.images import headers
from lambdas.inference.images.budget import MB, MemoryBudget, decode_cost
from lambdas.inference.images.decode import (
    ImageLimits,
    PreparedImage,
    describe,
    fits_as_is,
    open_image,
    prepare_image,
)
from lambdas.inference.images.headers import Header

if TYPE_CHECKING:
    from lambdas.contract.values import ObjectRef
    from lambdas.inference.images.sandbox import Sandbox

# Enough for the header of a JPEG (EXIF lives in APP1, at most 64 KB) or a PNG (IHDR comes first).
HEADER_BYTES = 64 * 1024
# Decoded in the function's own process: formats whose decoders' memory is measured and modelled exactly.
IN_PROCESS_FORMATS = frozenset({"JPEG", "PNG"})
# A JPEG or PNG costed at up to a quarter of the budget (144 MB at 1024 MB: a 50-megapixel photo downscaled for
# SageMaker) is decoded in the function's process: a child would add its helper and a second copy of the bytes
# (50 MP for SageMaker: +95 MB instead of +41, make bench row 4) for a cost the measured model already bounds.
IN_PROCESS_SHARE = 4
# What a child may use to open an image whose header the first bytes did not give, besides its bytes (and at most
# a quarter of the budget: an image that needs more to be opened gets the whole budget once).
OPEN_ALLOWANCE = 64 * MB
# A child may decode for at most this share of an invocation (an image that needs more can never finish), or
# this long outside Lambda.
DECODE_SHARE = 0.5
DECODE_SECONDS = 120.0
_SIGNATURES_PILLOW_MAY_OPEN = (b"\xff\xd8", headers.PNG_SIGNATURE)


class ImageSource(Protocol):
    """The image to analyse: where it is, a way to read its bytes (all, or its first ones) only if needed, and the
    execution environment's decode budget. The pipeline hands one to the backend; the backend to ``prepare_source``."""

    @property
    def ref(self) -> ObjectRef: ...

    def read(self) -> bytes:
        """The object's bytes (raises PermanentError/TransientError from storage)."""
        ...

    def read_head(self, length: int) -> bytes:
        """The object's first ``length`` bytes (all of it when it is shorter)."""
        ...

    @property
    def budget(self) -> MemoryBudget | None:
        """The execution environment's decode budget (``prepare_source`` reserves within it)."""
        ...


def read_header(data: bytes, *, complete: bool) -> Header | None:
    """Parse the header from the first bytes of an object.

    ``complete`` says ``data`` is the whole object. Returns None when the header does not fit in the bytes
    given (inconclusive); raises PermanentError when the object is certainly not a usable image. JPEG, PNG and
    WebP headers are read without Pillow (``headers.py``); Pillow reads only what a JPEG or PNG parser left
    open, and judges a complete object's signature; any other format's header is read by a bounded child.
    """
    try:
        native = headers.probe(data)
    except headers.TooManyPixels as exc:
        raise PermanentError(errors.IMAGE_TOO_LARGE, f"refused by the decompression-bomb guard: {exc}") from None
    if native is not None:
        return native
    if data.startswith(_SIGNATURES_PILLOW_MAY_OPEN):
        try:
            return describe(open_image(data), complete=complete)
        except PermanentError as exc:
            if complete or exc.code == errors.IMAGE_TOO_LARGE:  # a bomb's header fits: that answer is final
                raise
            return None
    if complete:
        if not data:
            raise PermanentError(errors.IMAGE_EMPTY, "the object is empty (0 bytes)")
        if not _signature_known(data):
            raise PermanentError(
                errors.IMAGE_UNREADABLE, "not an image in any format Pillow recognises (wrong suffix, or corrupt)"
            )
    return None


def _signature_known(data: bytes) -> bool:
    """Some format Pillow reads accepts these first bytes (a signature check: nothing is opened)."""
    from PIL import Image

    Image.init()
    for _reader, accept in Image.OPEN.values():
        try:
            if accept is not None and accept(data[:16]):
                return True
        except Exception:  # noqa: BLE001, S112 - a check that fails on a short prefix is a "no"
            continue
    return False


def prepare_read(read: Callable[[], bytes], limits: ImageLimits, *, verify: bool = False) -> PreparedImage:
    """Bytes the backend accepts (``decode.prepare_image``), decoded here, with no budget: for tools and tests.
    The bytes ``read`` returns are owned here and released as soon as the image is decoded."""
    return prepare_image(read(), limits, verify=verify)


def in_process_limit(budget: MemoryBudget) -> int:
    return budget.total // IN_PROCESS_SHARE


class _Reroute(Exception):
    """The whole file says something else than its first bytes: prepared in a child, by what the file says."""

    def __init__(self, header: Header) -> None:
        super().__init__(header)
        self.header = header


def prepare_source(source: ImageSource, limits: ImageLimits, *, verify: bool) -> PreparedImage:
    """Read and prepare an image within its execution environment's budget (see the module's docstring)."""
    budget = source.budget
    if budget is None:
        return prepare_read(source.read, limits, verify=verify)
    head = source.read_head(HEADER_BYTES)
    size = source.ref.size
    complete = len(head) < HEADER_BYTES or (size is not None and size <= HEADER_BYTES)
    header = read_header(head, complete=complete)
    del head
    what = source.ref.key
    cost = decode_cost(header, size, limits, verify=verify)
    as_is = header is not None and header.settled and fits_as_is(header, limits, size) and not verify
    if (
        header is not None
        and cost is not None
        and header.format in IN_PROCESS_FORMATS
        and (cost <= in_process_limit(budget) or as_is)
    ):
        try:
            with budget.reserve(cost, what):
                prepared = _in_process(source.read(), header, limits, verify=verify)
            if as_is and prepared.facts.transformations == ():
                return prepared
            return prepared._replace(facts=prepared.facts._replace(decoded_in="function", decode_reserved=cost))
        except _Reroute as reroute:
            header = reroute.header
    return _in_child(source, header, limits, verify=verify)


def _in_process(data: bytes, header: Header, limits: ImageLimits, *, verify: bool) -> PreparedImage:
    image = open_image(data)
    described = describe(image)
    if not _same_image(described, header):
        raise _Reroute(described)
    return prepare_image(data, limits, verify=verify, image=image, header=described)


def _same_image(a: Header, b: Header) -> bool:
    return (a.format, a.width, a.height, a.mode) == (b.format, b.width, b.height, b.mode)


def _known(described: Header, read: Header | None) -> Header:
    """What the child says of the whole file, with how a JPEG is coded as the function's own parser read it from
    the first scan (Pillow does not say whether a baseline file has several scans)."""
    if read is not None and read.jpeg is not None and _same_image(described, read):
        return replace(described, jpeg=read.jpeg)
    return described


_SANDBOX: Sandbox | None = None


def sandbox() -> Sandbox:
    """The execution environment's decode helper (one per process; started on its first image)."""
    global _SANDBOX
    if _SANDBOX is None:
        from lambdas.inference.images.sandbox import Sandbox

        _SANDBOX = Sandbox()
    return _SANDBOX


def _in_child(source: ImageSource, header: Header | None, limits: ImageLimits, *, verify: bool) -> PreparedImage:
    """Prepare in a bounded child: reserve what the header says (or enough to open it), learn from the child what
    the whole file says, and grow the reservation (reading the image again) only when it must; a child that runs
    out of its bound gets the whole budget once."""
    from lambdas.inference.images.sandbox import CHILD_OVERHEAD, OutOfMemory, Stopped

    budget, ref, what = source.budget, source.ref, source.ref.key
    assert budget is not None
    source_queue.at_risk(f"{what} is decoded in a bounded child")
    size = ref.size or 0
    cost = decode_cost(header, ref.size, limits, verify=verify)
    opening = min(OPEN_ALLOWANCE, budget.total // 4)
    allowance = cost if cost is not None else (size + opening if ref.size is not None else budget.total)
    for _ in range(4):
        # The child's allowance, the function's copy of the bytes while it hands them over, the child's own pages.
        with budget.reserve(allowance + size + CHILD_OVERHEAD, what):
            data = source.read()
            size = len(data)
            with sandbox().job(allowance, header) as job:
                seconds, capped = deadline.share(DECODE_SHARE, DECODE_SECONDS)
                try:
                    header = _known(job.describe(data, seconds), header)
                    del data
                    need = decode_cost(header, size, limits, verify=verify) or allowance
                    if need > allowance:
                        allowance = need  # grown: released, reserved again, read again
                        continue
                    seconds, capped = deadline.share(DECODE_SHARE, DECODE_SECONDS)
                    prepared = job.prepare(limits, verify=verify, seconds=seconds)
                    facts = prepared.facts._replace(decoded_in="child", decode_reserved=allowance, decode_held=job.held)
                    return prepared._replace(facts=facts)
                except OutOfMemory:
                    if allowance + size + CHILD_OVERHEAD >= budget.total:
                        raise
                    allowance = budget.total - size - CHILD_OVERHEAD  # the estimate was short: all there is, once
                except Stopped as stopped:
                    if capped:
                        raise PermanentError(
                            errors.IMAGE_TOO_LARGE,
                            f"it takes more than {stopped.seconds:.0f} s to decode (half the function's time; "
                            "raise lambdaMemoryMb for more CPU)",
                        ) from None
                    raise TransientError(
                        errors.OUT_OF_TIME, f"{what} was still decoding at the invocation's end"
                    ) from None
    raise PermanentError(errors.IMAGE_TOO_LARGE, f"{what} kept needing more memory than it said it would")
