"""Image preparation with Pillow: pass an image through untouched when the backend can take it as it is,
otherwise decode as little as possible, convert and downscale it to fit the backend's limits.

Bounding boxes are ratios of the image's width and height, and downscaling keeps the aspect ratio, so
boxes found on the prepared image hold for the original too. (EXIF rotation is the exception: when it is
applied, boxes are relative to the upright image, and the result records that.)

Pillow is imported inside the functions: the Rekognition ``S3Object`` path never needs it, and the cold
start should not pay for it.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from lambdas.inference.core import errors
from lambdas.inference.core.errors import PermanentError
from lambdas.inference.core.values import ImageFacts
from lambdas.inference.images import headers
from lambdas.inference.images.headers import Header, JpegLayout

if TYPE_CHECKING:
    from PIL.Image import Image

    from lambdas.inference.core.values import ObjectRef

MB = 1024 * 1024
EXIF_ORIENTATION_TAG = 0x0112
JPEG_QUALITIES = (90, 80, 70)


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


@dataclass(frozen=True)
class ImageLimits:
    """What a backend accepts as request bytes."""

    max_bytes: int
    max_side: int
    min_side: int = 1
    max_aspect_ratio: float | None = None
    native_formats: frozenset[str] = frozenset({"JPEG", "PNG"})
    native_modes: frozenset[str] = frozenset({"1", "L", "RGB", "RGBA", "LA", "P"})


# DetectCustomLabels with Image.Bytes: PNG or JPEG, 4 MB, 64-4096 px per side, aspect ratio at most 20:1.
REKOGNITION_BYTES = ImageLimits(max_bytes=4 * MB, max_side=4096, min_side=64, max_aspect_ratio=20.0)
# With Image.S3Object the same, but up to 15 MB.
REKOGNITION_S3_OBJECT = ImageLimits(max_bytes=15 * MB, max_side=4096, min_side=64, max_aspect_ratio=20.0)


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    content_format: str  # Pillow's format name of ``data``: "JPEG" or "PNG"
    facts: ImageFacts


# Pillow's words for "I know this format but cannot decode this variant of it" (codec, mode, compression).
_UNSUPPORTED = re.compile(r"not available|not supported|unsupported|unknown (raw )?mode|unknown compression", re.I)


def decode_failure(exc: Exception, what: str, image_format: str | None = None) -> PermanentError:
    """Whatever Pillow raised while reading or decoding (OSError, SyntaxError, ValueError, TypeError, IndexError,
    struct.error, EOFError...), as one documented outcome: IMAGE_UNSUPPORTED when Pillow recognised the format
    but cannot decode this variant of it, IMAGE_UNREADABLE otherwise (truncated, corrupt)."""
    detail = f"{type(exc).__name__}: {exc}"
    if image_format and _UNSUPPORTED.search(str(exc)):
        return PermanentError(
            errors.IMAGE_UNSUPPORTED, f"a {image_format} image in a variant that cannot be decoded ({detail})"
        )
    return PermanentError(errors.IMAGE_UNREADABLE, f"{what}: {detail}")


def _open(data: bytes) -> Image:
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise PermanentError(errors.IMAGE_EMPTY, "the object is empty (0 bytes)")
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise PermanentError(errors.IMAGE_TOO_LARGE, f"refused by the decompression-bomb guard: {exc}") from None
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read a header is the same documented outcome
        raise decode_failure(exc, "the image header cannot be read") from None


def _unidentified(data: bytes) -> PermanentError:
    """Pillow could not open it. When a format's signature matches, ask that format's reader why: a TIFF
    with a compression scheme Pillow lacks is not "wrong suffix, or corrupt"."""
    from PIL import Image

    prefix = data[:16]
    for name, (reader, accept) in Image.OPEN.items():
        try:
            accepted = accept is not None and bool(accept(prefix))
        except Exception:  # noqa: BLE001 - a signature check that fails on a short prefix is a "no"
            accepted = False
        if not accepted:
            continue
        try:
            open_with: Any = reader  # an ImageFile subclass: its constructor reads the header
            open_with(io.BytesIO(data))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - see decode_failure
            if str(exc).isdigit():  # an unknown code in the file's tags (compression, photometric...)
                return PermanentError(
                    errors.IMAGE_UNSUPPORTED,
                    f"a {name} file in a variant that cannot be decoded ({type(exc).__name__}: unknown value {exc})",
                )
            return decode_failure(exc, f"a {name} file that cannot be opened", name)
        break
    return PermanentError(
        errors.IMAGE_UNREADABLE, "not an image in any format Pillow recognises (wrong suffix, or corrupt)"
    )


def _orientation(image: Image) -> int:
    """The EXIF orientation, 1 when there is none. A PNG whose chunks before the pixels hold no eXIf is not
    decoded to look for one after them (Pillow's getexif would): that is ``_decode_png``'s, where a failure
    counts, and a header probe must not decode at all."""
    if image.format == "PNG" and "exif" not in image.info and getattr(image, "tile", None):
        return 1
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not fail an otherwise good image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# Enough for the header of a JPEG (EXIF lives in APP1, at most 64 KB) or a PNG (IHDR comes first).
HEADER_BYTES = 64 * 1024


def read_header(data: bytes, *, complete: bool) -> Header | None:
    """Parse the header from the first bytes of an object.

    ``complete`` says ``data`` is the whole object. Returns None when the header does not fit in the bytes
    given (inconclusive); raises PermanentError when the object is certainly not a usable image. Plain
    JPEGs and PNGs are read without Pillow (``headers.py``); anything else is Pillow's to judge.
    """
    try:
        native = headers.probe(data)
    except headers.TooManyPixels as exc:
        raise PermanentError(errors.IMAGE_TOO_LARGE, f"refused by the decompression-bomb guard: {exc}") from None
    if native is not None:
        return native
    try:
        image = _open(data)
    except PermanentError as exc:
        if complete or exc.code == errors.IMAGE_TOO_LARGE:  # a bomb's header fits: that answer is final
            raise
        return None
    return _header(image, complete=complete)


def _header(image: Image, *, complete: bool = True) -> Header:
    """The header Pillow read. Counting frames reads through the file (a TIFF's pages, a GIF's frames): from
    the first bytes only, a failure to count says nothing about the file, and the count stays unknown (None)."""
    frames: int | None
    try:
        frames = int(getattr(image, "n_frames", 1))
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - see decode_failure
        if not complete:
            frames = None
        else:
            raise decode_failure(exc, "the image's frames cannot be counted", image.format) from None
    return Header(
        format=image.format,
        width=image.width,
        height=image.height,
        mode=image.mode,
        orientation=_orientation(image),
        frames=frames,
        jpeg=_jpeg_layout(image),
    )


def _jpeg_layout(image: Image) -> JpegLayout | None:
    """A JPEG's (or MPO's) coding as Pillow read it. Pillow does not say whether a baseline file has several
    scans, so only a progressive one is known for sure; the rest count as "may need the coefficient buffer"."""
    layers = getattr(image, "layer", None)
    if image.format not in ("JPEG", "MPO") or not isinstance(layers, list):
        return None
    try:
        sampling = tuple((int(layer[1]), int(layer[2])) for layer in layers)
    except (TypeError, ValueError, IndexError):
        sampling = ()
    progressive = bool(image.info.get("progressive") or image.info.get("progression"))
    return JpegLayout(progressive, sampling or ((1, 1),) * len(image.getbands()), True if progressive else None)


def fits_as_is(header: Header, limits: ImageLimits, size: int | None) -> bool:
    """The backend can take this image untouched (format, mode, dimensions, orientation, one frame)."""
    longest, shortest = max(header.width, header.height), min(header.width, header.height)
    return (
        header.format in limits.native_formats
        and header.mode in limits.native_modes
        and (size is None or size <= limits.max_bytes)
        and limits.min_side <= shortest
        and longest <= limits.max_side
        and (limits.max_aspect_ratio is None or longest / shortest <= limits.max_aspect_ratio)
        and header.orientation == 1
        and header.frames == 1
    )


def prepare_read(read: Callable[[], bytes], limits: ImageLimits, *, verify: bool = False) -> PreparedImage:
    """Bytes the backend accepts, converting and downscaling only when needed (see ``_prepare``). The bytes
    ``read`` returns are owned here and released as soon as the image is decoded, so a large object's
    encoded bytes and its decoded pixels are not in memory together for long."""
    return _prepare([read()], limits, verify=verify)


def _prepare(holder: list[bytes], limits: ImageLimits, *, verify: bool) -> PreparedImage:
    """Return bytes the backend accepts, converting and downscaling only when needed.

    ``verify`` decodes an image that would pass through untouched, to tell a truncated or corrupt file
    (IMAGE_UNREADABLE) from one the backend refuses for other reasons.

    Raises PermanentError (IMAGE_EMPTY, IMAGE_UNREADABLE, IMAGE_TOO_SMALL, IMAGE_TOO_LARGE,
    IMAGE_ASPECT_RATIO) when no conversion can make the image acceptable.
    """
    from PIL import Image

    data = holder.pop()
    image = _open(data)
    _decode_png(image)
    header = _header(image)
    source_format = header.format
    width, height, source_format = header.width, header.height, header.format
    frames, orientation = header.frames, header.orientation

    if min(width, height) < limits.min_side:
        raise PermanentError(
            errors.IMAGE_TOO_SMALL,
            f"{width}x{height} px; the backend needs at least {limits.min_side} px on each side",
        )
    if limits.max_aspect_ratio and max(width, height) / min(width, height) > limits.max_aspect_ratio:
        raise PermanentError(
            errors.IMAGE_ASPECT_RATIO,
            f"{width}x{height} px exceeds the backend's {limits.max_aspect_ratio:g}:1 aspect ratio limit",
        )

    facts = ImageFacts(sent_as="bytes", format=source_format, width=width, height=height)
    if fits_as_is(header, limits, len(data)):
        if verify:
            try:
                if source_format == "JPEG":
                    # Every byte of a JPEG is read at the smallest DCT scale too: truncation shows, 1/64 the pixels.
                    image.draft(None, (max(1, width // 8), max(1, height // 8)))
                image.load()
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - see decode_failure
                raise decode_failure(exc, "the image cannot be decoded", source_format) from None
        return PreparedImage(
            data=data,
            content_format=source_format or "JPEG",
            facts=replace(facts, sent_width=width, sent_height=height),
        )

    # Decoding a non-JPEG this large would use gigabytes; JPEGs are decoded at reduced scale (draft mode).
    if source_format != "JPEG" and width * height > (Image.MAX_IMAGE_PIXELS or width * height):
        raise PermanentError(
            errors.IMAGE_TOO_LARGE,
            f"{width}x{height} px ({width * height / 1e6:.0f} MP) is more than can be decoded safely",
        )

    steps: list[str] = []
    try:
        if frames is not None and frames > 1:
            image.seek(0)
            steps.append(f"first_frame_of_{frames}")
        scale = _draft_scale(source_format, max(width, height), limits.max_side)
        if scale > 1:
            # JPEG's DCT scaling decodes at 1/2, 1/4 or 1/8 size directly: a fraction of the memory and
            # time of decoding every pixel. Keep at least 90% of the target size.
            image.draft(None, (width // scale, height // scale))
        image.load()
        # Decoded: release the encoded bytes before resampling, so both are never in memory at once with
        # the resampling buffers (what prepare_read is for).
        image.fp = None  # type: ignore[attr-defined]  # an ImageFile: Image.open returned it
        del data
        factor = max(image.size) // limits.max_side
        if factor >= 2:
            image = _reduce_in_strips(image, factor)  # the full-size image is released here
        if max(image.size) > limits.max_side:
            image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS, reducing_gap=None)
        if image.size != (width, height):
            steps.append(f"downscaled_to_{image.width}x{image.height}")
        if orientation != 1:
            from PIL import ImageOps

            image = ImageOps.exif_transpose(image)
            steps.append(f"exif_orientation_{orientation}_applied")
        image, converted = _to_rgb(image)
        if converted:
            steps.append(converted)
        encoded, (sent_width, sent_height) = _encode_jpeg_within(image, limits, steps)
    except (PermanentError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - see decode_failure
        raise decode_failure(exc, "the image cannot be decoded", source_format) from None

    if source_format != "JPEG":
        steps.insert(0, f"converted_{source_format or 'unknown'}_to_JPEG")
    return PreparedImage(
        data=encoded,
        content_format="JPEG",
        facts=ImageFacts(
            sent_as="bytes",
            format=source_format,
            width=width,
            height=height,
            sent_width=sent_width,
            sent_height=sent_height,
            transformations=tuple(steps),
        ),
    )


def _decode_png(image: Image) -> None:
    """Decode a PNG now when an eXIf chunk may follow its pixels, so that its orientation is known (Pillow finds
    such a chunk only by decoding). A failure here is the image's: Pillow marks a failed decode as done, so a
    later ``load()`` would return the half-decoded image as if it were whole."""
    if image.format != "PNG" or "exif" in image.info:
        return
    try:
        image.load()
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - see decode_failure
        raise decode_failure(exc, "the image cannot be decoded", "PNG") from None


STRIP_ROWS = 64  # output rows per strip: a strip's copy is (width x 64 x factor) pixels


def _reduce_in_strips(image: Image, factor: int) -> Image:
    """Shrink by an integer ``factor`` (box averaging) one horizontal strip at a time.

    Pillow's resize and reduce convert an RGBA or LA image to premultiplied alpha at full size first: for an
    88-megapixel RGBA PNG that is a second 353 MB copy. Strips keep the extra memory to a strip's copy and
    the (factor-squared smaller) output.
    """
    from PIL import Image as PILImage

    width, height = image.size
    if image.mode in _REDUCIBLE_MODES:
        out_mode = image.mode
    elif image.mode.startswith("I;16"):
        out_mode = "I"  # keeps 16-bit values for _to_rgb's scaling
    else:
        out_mode = "RGBA" if _has_alpha(image) else "RGB"
    out = PILImage.new(out_mode, (-(-width // factor), -(-height // factor)))
    rows = STRIP_ROWS * factor
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        if strip.mode != out_mode:
            strip = strip.convert(out_mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})


def _has_alpha(image: Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _draft_scale(source_format: str | None, longest: int, max_side: int) -> int:
    """The largest JPEG decode reduction (1, 2, 4 or 8) that leaves at least 90% of ``max_side``."""
    if source_format != "JPEG":
        return 1
    floor = max_side * 9 // 10
    return max((scale for scale in (1, 2, 4, 8) if longest // scale >= floor), default=1)


def _to_rgb(image: Image) -> tuple[Image, str | None]:
    """RGB for JPEG encoding: alpha flattened onto white, 16-bit scaled to 8-bit, CMYK and palettes converted."""
    from PIL import Image as PILImage

    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale 0-65535 down to 0-255 before converting.
        eight_bit = image.convert("I").point(lambda value: value / 256).convert("L")
        return eight_bit.convert("RGB"), f"converted_{mode}_to_RGB"
    if mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background, f"flattened_{mode}_alpha_onto_white"
    return image.convert("RGB"), f"converted_{mode}_to_RGB"


def _encode_jpeg_within(image: Image, limits: ImageLimits, steps: list[str]) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image as PILImage

    while True:
        for quality in JPEG_QUALITIES:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= limits.max_bytes:
                if quality != JPEG_QUALITIES[0]:
                    steps.append(f"jpeg_quality_{quality}")
                return buffer.getvalue(), image.size
        smaller = (int(image.width * 0.75), int(image.height * 0.75))
        if min(smaller) < limits.min_side:
            raise PermanentError(
                errors.IMAGE_TOO_LARGE, f"cannot be encoded within {limits.max_bytes} bytes at a usable size"
            )
        image = image.resize(smaller, PILImage.Resampling.LANCZOS)
        steps.append(f"downscaled_to_{image.width}x{image.height}_for_size")


# --- memory: decoded pixels are budgeted per execution environment, not per image -------------------------

# Pillow's bytes per pixel by mode (RGB, RGBA, CMYK, I, F: 4).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "LA": 4, "PA": 4}
# What a decoder holds besides the image it fills, as a multiple of that image (measured on tests/support/
# corpus.py: libwebp decodes into its own buffer before Pillow copies it, about 1.0-1.6 times the image).
# JPEG's is its coefficient buffer (headers.JpegLayout), PNG, GIF, BMP and TIFF decode in place.
_DECODER_EXTRA = {"WEBP": 2.25}
# libjpeg's and zlib's own tables and row buffers, Pillow's decoder state: about 2 MB measured, whatever the size.
_DECODER_FIXED = 4 * MB
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_MODE_BANDS = {"L": "L", "RGB": "RGB", "CMYK": "CMYK", "YCbCr": "RGB"}
# Copies of the output while it is converted and encoded; palettes and alpha take one more (RGBA, mask,
# background) than a plain RGB image.
_OUTPUT_COPIES, _OUTPUT_COPIES_CONVERTED = 3, 4
# Held by the Python runtime, boto3, Powertools, Pillow and the threads before any image (measured: about
# 110-130 MB on arm64, with margin for the result documents and the client buffers).
RUNTIME_RESERVE_MB = 256
BUDGET_SHARE = 0.75  # of what is left: allocator fragmentation and the encoder's buffers need the rest
MIN_BUDGET_MB = 64


def budget_bytes(memory_mb: int) -> int:
    """The decode budget of an execution environment with ``memory_mb`` of memory."""
    return int(max(MIN_BUDGET_MB, (memory_mb - RUNTIME_RESERVE_MB) * BUDGET_SHARE) * MB)


def decode_cost(header: Header | None, size: int | None, limits: ImageLimits, *, verify: bool) -> int | None:
    """Bytes held at the peak of preparing this image (``_prepare``), from its header alone: the encoded bytes;
    the decoded image (at the JPEG draft scale); what the decoder holds besides (a progressive or multi-scan
    JPEG's whole-image coefficients, libwebp's own buffer); resampling's intermediates (the full-size
    premultiplied copy Pillow makes of an image with alpha, the first pass of a two-pass resize); and the
    output's copies while it is converted and encoded. None when the header is unknown (the preparation then
    runs alone). Checked against measured peaks: tests/integration/test_decode_memory.py."""
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
        scale = 8 if as_is else _draft_scale("JPEG", max(width, height), limits.max_side)
        # Without its coding known, a JPEG may be progressive: every component at full resolution.
        jpeg = jpeg or JpegLayout(False, ((1, 1),) * len(_MODE_BANDS.get(header.mode, "RGB")), None)
    drafted_w, drafted_h = max(1, -(-width // scale)), max(1, -(-height // scale))
    decoded = drafted_w * drafted_h * _BYTES_PER_PIXEL.get(header.mode, 4)
    if jpeg is not None:
        decoder = jpeg.decoder_bytes(width, height)
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
    return encoded + decoded + decoder + resample + copies * output + _DECODER_FIXED


class MemoryBudget:
    """Concurrent decodes share a budget of bytes; one that can never fit is refused with IMAGE_TOO_LARGE.

    Each image reserves its whole cost at once, before its bytes are read, so reservations cannot deadlock:
    when nothing is held, any reservation up to the total is admitted.
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
            self._changed.wait_for(lambda: self.held + need <= self.total)
            self.held += need
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._changed:
                self.held -= need
                self._changed.notify_all()


def prepare_source(source: ImageSource, limits: ImageLimits, *, verify: bool) -> PreparedImage:
    """Read and prepare an image within its execution environment's budget: the header first (64 KB), so the cost
    is known before the bytes are read; then the bytes, decoded and released inside the reservation."""
    budget = source.budget
    if budget is None:
        return prepare_read(source.read, limits, verify=verify)
    head = source.read_head(HEADER_BYTES)
    size = source.ref.size
    complete = len(head) < HEADER_BYTES or (size is not None and size <= HEADER_BYTES)
    header = read_header(head, complete=complete)
    cost = decode_cost(header, size if size is not None else None, limits, verify=verify)
    with budget.reserve(cost, source.ref.key):
        return prepare_read(source.read, limits, verify=verify)
