"""Pillow's part: open an image, say what it is, and prepare it within a backend's limits (pass it through untouched
when the backend can take it as it is, otherwise decode as little as possible, convert and downscale it).

Bounding boxes are ratios of the image's width and height, and downscaling keeps the aspect ratio, so boxes found
on the prepared image hold for the original too. (EXIF rotation is the exception: when it is applied, boxes are
relative to the upright image, and the result records that.)

This module decodes in whatever process calls it: in the function itself for the JPEGs and PNGs whose cost the
budget knows (``prepare.py``), in a child with a hard memory bound for everything else (``sandbox.py``). Pillow is
imported inside the functions: the Rekognition ``S3Object`` path never needs it, and the cold start should not
pay for it.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.contract.values import ImageFacts
from lambdas.inference.images.headers import PILLOW_MAX_IMAGE_PIXELS, Header, JpegLayout

if TYPE_CHECKING:
    from PIL.Image import Image

MB = 1024 * 1024
EXIF_ORIENTATION_TAG = 0x0112
JPEG_QUALITIES = (90, 80, 70)
# A TIFF's pages are counted by reading each page's directory: past this many the count stops (the first page is
# what the model sees; the result says "more than"). Pillow's own count is quadratic in the pages (150,000 pages:
# minutes), and other formats count frames without decoding them.
FRAME_COUNT_LIMIT = 1000
FRAME_COUNT_SECONDS = 1.0


class ImageLimits(NamedTuple):
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


class PreparedImage(NamedTuple):
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


def too_many_pixels(width: int, height: int) -> PermanentError:
    return PermanentError(
        errors.IMAGE_TOO_LARGE,
        f"{width}x{height} px ({width * height / 1e6:.0f} MP) is more than can be decoded safely",
    )


def open_image(data: bytes) -> Image:
    """Pillow's view of ``data``: its header read, not a pixel decoded."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise PermanentError(errors.IMAGE_EMPTY, "the object is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns about what it then handles (a corrupt EXIF block, a large image); the outcome says it.
            warnings.simplefilter("ignore")
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


def orientation(image: Image) -> int:
    """The EXIF orientation, 1 when there is none. A PNG whose chunks before the pixels hold no eXIf is not
    decoded to look for one after them (Pillow's getexif would): that is ``decode_png``'s, where a failure
    counts, and a header must never decode at all."""
    import warnings

    if image.format == "PNG" and "exif" not in image.info and getattr(image, "tile", None):
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data": a broken block reads as no rotation
            value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not fail an otherwise good image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def describe(image: Image, *, complete: bool = True) -> Header:
    """The header Pillow read. Counting frames reads through the file (a TIFF's pages, a GIF's frames): from
    the first bytes only, a failure to count says nothing about the file, and the count stays unknown (None);
    past ``FRAME_COUNT_LIMIT`` pages it stops (None: "more")."""
    frames: int | None
    try:
        frames = count_frames(image)
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
        orientation=orientation(image),
        frames=frames,
        jpeg=_jpeg_layout(image),
        layout=_layout(image),
    )


def count_frames(image: Image) -> int | None:
    """How many frames (pages) the image holds: 1 for a still image; None past ``FRAME_COUNT_LIMIT`` pages or
    ``FRAME_COUNT_SECONDS`` of counting. A TIFF is counted page by page, without Pillow's quadratic count."""
    if image.format != "TIFF":
        return int(getattr(image, "n_frames", 1))
    started, count = time.monotonic(), 1
    try:
        while count < FRAME_COUNT_LIMIT and time.monotonic() - started < FRAME_COUNT_SECONDS:
            try:
                image.seek(count)
            except EOFError:
                return count
            count += 1
    finally:
        image.seek(0)
    return None


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


def _layout(image: Image) -> tuple[int, int, int] | None:
    """A TIFF's unit of decoding as (width, rows, bytes per sample): libtiff decodes a whole strip or tile into
    a buffer of its own before Pillow unpacks it, so a file with all its rows in one strip holds its pixels twice,
    at the file's own depth."""
    if image.format != "TIFF":
        return None
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return None
    try:
        bits = max(int(value) for value in (tags.get(258) or (8,)))
        samples = int(tags.get(277, 1))
        if 322 in tags and 323 in tags:  # TileWidth, TileLength
            return int(tags[322]), int(tags[323]), samples * max(1, -(-bits // 8))
        rows = int(tags.get(278, image.height))  # RowsPerStrip: the whole image when absent
        return image.width, min(max(1, rows), image.height), samples * max(1, -(-bits // 8))
    except (TypeError, ValueError):
        return None


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


def prepare_image(
    data: bytes, limits: ImageLimits, *, verify: bool, image: Image | None = None, header: Header | None = None
) -> PreparedImage:
    """Bytes the backend accepts, converting and downscaling only when needed.

    ``verify`` decodes an image that would pass through untouched, to tell a truncated or corrupt file
    (IMAGE_UNREADABLE) from one the backend refuses for other reasons. ``image``: ``data`` already opened, and
    ``header`` what ``describe`` said of it (its frames are not counted again).

    Raises PermanentError (IMAGE_EMPTY, IMAGE_UNREADABLE, IMAGE_UNSUPPORTED, IMAGE_TOO_SMALL, IMAGE_TOO_LARGE,
    IMAGE_ASPECT_RATIO) when no conversion can make the image acceptable.
    """
    from PIL import Image

    image = image or open_image(data)
    width, height = image.size
    if image.format != "JPEG" and width * height > (Image.MAX_IMAGE_PIXELS or PILLOW_MAX_IMAGE_PIXELS):
        # Decoding a non-JPEG this large would use gigabytes (JPEGs are decoded at reduced scale, draft mode).
        # Checked before anything is decoded, a PNG's search for its orientation included.
        raise too_many_pixels(width, height)
    decode_png(image)
    header = replace(header, orientation=orientation(image)) if header is not None else describe(image)
    source_format = header.format
    frames, rotation = header.frames, header.orientation

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
            facts=facts._replace(sent_width=width, sent_height=height),
        )

    steps: list[str] = []
    try:
        if frames != 1:
            image.seek(0)
            steps.append(f"first_frame_of_{frames}" if frames else f"first_frame_of_more_than_{FRAME_COUNT_LIMIT}")
        scale = draft_scale(source_format, max(width, height), limits.max_side)
        if scale > 1:
            # JPEG's DCT scaling decodes at 1/2, 1/4 or 1/8 size directly: a fraction of the memory and
            # time of decoding every pixel. Keep at least 90% of the target size.
            image.draft(None, (width // scale, height // scale))
        image.load()
        # Decoded: release the encoded bytes before resampling, so both are never in memory at once with
        # the resampling buffers.
        image.fp = None  # type: ignore[attr-defined]  # an ImageFile: Image.open returned it
        del data
        factor = max(image.size) // limits.max_side
        if factor >= 2:
            image = _reduce_in_strips(image, factor)  # the full-size image is released here
        if max(image.size) > limits.max_side:
            image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS, reducing_gap=None)
        if image.size != (width, height):
            steps.append(f"downscaled_to_{image.width}x{image.height}")
        if rotation != 1:
            from PIL import ImageOps

            image = ImageOps.exif_transpose(image)
            steps.append(f"exif_orientation_{rotation}_applied")
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


def decode_png(image: Image) -> None:
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


def draft_scale(source_format: str | None, longest: int, max_side: int) -> int:
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
