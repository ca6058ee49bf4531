"""Memory: decoded pixels are budgeted per execution environment, not per image.

``decode_cost`` says what preparing an image will hold at its peak, from its header; ``MemoryBudget`` lets
concurrent records hold at most the environment's budget at once. The cost schedules the work; it is not what
keeps the function alive: everything the estimate might get wrong is decoded in a child bounded to what was
reserved for it (``sandbox.py``), and only the JPEGs and PNGs whose decoders are measured (test_decode_memory)
are decoded in the function's own process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.inference import deadline
from lambdas.inference.images.decode import STRIP_ROWS, ImageLimits, draft_scale, fits_as_is
from lambdas.inference.images.headers import Header, JpegLayout

MB = 1024 * 1024

# Pillow's bytes per pixel by mode (RGB, RGBA, CMYK, I, F: 4).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "LA": 4, "PA": 4}
# What a decoder holds besides the image it fills, as a multiple of that image, measured in the sandbox on 12 and
# 89 megapixel files (docs/performance.md, "Memory"): libwebp's animation decoder keeps two canvases of its own
# (16 B/px in all for RGB), OpenJPEG a 32-bit plane per component (19.6 B/px untiled), libavif its YUV planes and
# an RGB copy. JPEG's is its coefficient buffer (headers.JpegLayout), TIFF's the strip or tile libtiff decodes
# into (``Header.layout``); PNG, GIF and BMP decode in place.
_DECODER_EXTRA = {"WEBP": 3.0, "JPEG2000": 3.0, "AVIF": 1.5}
# libjpeg's and zlib's own tables and row buffers, Pillow's decoder state: about 2 MB measured, whatever the size.
_DECODER_FIXED = 4 * MB
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_MODE_BANDS = {"L": "L", "RGB": "RGB", "CMYK": "CMYK", "YCbCr": "RGB"}
# Copies of the output while it is converted and encoded; palettes and alpha take one more (RGBA, mask,
# background) than a plain RGB image.
_OUTPUT_COPIES, _OUTPUT_COPIES_CONVERTED = 3, 4
# Held by the Python runtime, boto3, Powertools, Pillow, the threads and the decode helper before any image
# (measured: 58 MB in the Lambda-faithful harness, the helper about 20 MB more; margin for the result documents
# and the client buffers).
RUNTIME_RESERVE_MB = 256
BUDGET_SHARE = 0.75  # of what is left: allocator fragmentation and the encoder's buffers need the rest
MIN_BUDGET_MB = 64


def budget_bytes(memory_mb: int) -> int:
    """The decode budget of an execution environment with ``memory_mb`` of memory."""
    return int(max(MIN_BUDGET_MB, (memory_mb - RUNTIME_RESERVE_MB) * BUDGET_SHARE) * MB)


def pixel_bytes(header: Header) -> int:
    """The decoded image Pillow holds, at full size."""
    return header.width * header.height * _BYTES_PER_PIXEL.get(header.mode, 4)


def decode_cost(header: Header | None, size: int | None, limits: ImageLimits, *, verify: bool) -> int | None:
    """Bytes held at the peak of preparing this image (``decode.prepare_image``), from its header alone: the
    encoded bytes; the decoded image (at the JPEG draft scale); what the decoder holds besides (a progressive or
    multi-scan JPEG's whole-image coefficients, libwebp's canvases, libtiff's strip); resampling's intermediates
    (the full-size premultiplied copy Pillow makes of an image with alpha, the first pass of a two-pass resize);
    and the output's copies while it is converted and encoded. None when the header is unknown. Checked against
    measured peaks: tests/integration/inference/test_decode_memory.py."""
    if header is None:
        return None
    encoded = size or 0
    as_is = fits_as_is(header, limits, size)
    if as_is and not verify:
        return encoded
    width, height = header.width, header.height
    scale = 1
    jpeg = header.jpeg
    if header.format in _JPEG_FORMATS:  # decoded at the smallest DCT scale when verified, the draft scale otherwise
        scale = 8 if as_is else draft_scale("JPEG", max(width, height), limits.max_side)
        # Without its coding known, a JPEG may be progressive: every component at full resolution.
        jpeg = jpeg or JpegLayout(False, ((1, 1),) * len(_MODE_BANDS.get(header.mode, "RGB")), None)
    drafted_w, drafted_h = max(1, -(-width // scale)), max(1, -(-height // scale))
    decoded = drafted_w * drafted_h * _BYTES_PER_PIXEL.get(header.mode, 4)
    if jpeg is not None:
        decoder = jpeg.decoder_bytes(width, height)
    elif header.format == "TIFF":
        # One strip or tile at the file's own depth; without the layout, the whole image at 16 bits a sample.
        strip_width, rows, depth = header.layout or (width, height, 8)
        decoder = strip_width * rows * depth
    else:
        decoder = int(decoded * _DECODER_EXTRA.get(header.format or "", 0.0))
    if as_is:
        return encoded + decoded + decoder + _DECODER_FIXED
    longest = max(drafted_w, drafted_h)
    ratio = min(1.0, limits.max_side / max(width, height))
    out_w, out_h = max(1, int(width * ratio)), max(1, int(height * ratio))
    output = out_w * out_h * 4
    factor = longest // limits.max_side
    alpha = header.mode in ("RGBA", "LA", "PA", "P")
    if factor >= 2:
        resample = drafted_w * STRIP_ROWS * factor * 4 * 2  # a strip's crop and its conversion
    elif longest > limits.max_side:
        # The first pass of the resize at the image's own depth; with alpha, a premultiplied full-size copy.
        working = 1 if header.mode in ("L", "1") else 4
        resample = out_w * drafted_h * working + (drafted_w * drafted_h * 4 if alpha else 0)
    else:
        resample = 0
    copies = _OUTPUT_COPIES_CONVERTED if alpha or header.mode not in ("RGB", "CMYK") else _OUTPUT_COPIES
    if header.orientation != 1:
        copies += 1  # the rotated copy (an orientation not yet known may turn out to need one)
    return encoded + decoded + decoder + resample + copies * output + _DECODER_FIXED


class MemoryBudget:
    """Concurrent decodes share a budget of bytes; one that can never fit is refused with IMAGE_TOO_LARGE.

    Each image reserves its whole cost at once, before its bytes are read, so reservations cannot deadlock:
    when nothing is held, any reservation up to the total is admitted. A wait ends at the invocation's deadline
    (OUT_OF_TIME: the record goes back to the queue), never later.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0
        self.peak = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, cost: int | None, what: str) -> Iterator[None]:
        """Hold ``cost`` bytes (the whole budget when None) while the block runs."""
        need = self.total if cost is None else cost
        if need > self.total:
            raise PermanentError(
                errors.IMAGE_TOO_LARGE,
                f"{what} needs about {need / MB:.0f} MB to decode and this function can hold {self.total / MB:.0f} MB "
                "of images at once (raise lambdaMemoryMb)",
            )
        with self._changed:
            if not self._changed.wait_for(lambda: self.held + need <= self.total, timeout=deadline.remaining()):
                raise TransientError(
                    errors.OUT_OF_TIME,
                    f"{what} waited for {need / MB:.0f} MB of decode memory until the invocation's end",
                )
            self.held += need
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._changed:
                self.held -= need
                self._changed.notify_all()
