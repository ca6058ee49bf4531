"""A seeded, bounded fuzz of image preparation: mutated JPEG, PNG, GIF, TIFF, WebP and BMP files through the
header reader and the preparation of both backends. Whatever Pillow raises must end as a documented
outcome (PermanentError with an image code), never an exception that escapes to the DLQ unexplained."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.inference import images
from tests.support import pictures
from tests.support.mutations import IMAGE_CODES, mutations

MUTATIONS_PER_BASE = 160
SAGEMAKER = images.ImageLimits(max_bytes=6 * images.MB, max_side=2048, native_formats=frozenset({"JPEG"}))


PATHS: dict[str, Callable[[bytes], object]] = {
    "header": lambda data: images.read_header(data, complete=True),
    "first bytes": lambda data: images.read_header(data[: len(data) // 2], complete=False),
    "rekognition": lambda data: images.prepare_read(lambda: data, images.REKOGNITION_BYTES, verify=True),
    "sagemaker": lambda data: images.prepare_read(lambda: data, SAGEMAKER, verify=True),
}


def test_no_mutated_image_escapes_as_an_undocumented_exception():
    cases = escapes = 0
    failures: list[str] = []
    codes: dict[str, int] = {}
    for mutation in mutations(MUTATIONS_PER_BASE):
        cases += 1
        for path, run in PATHS.items():
            try:
                run(mutation.data)
            except PermanentError as exc:
                codes[exc.code] = codes.get(exc.code, 0) + 1
                if exc.code not in IMAGE_CODES:
                    failures.append(f"{mutation.name} on {path}: code {exc.code}")
            except Exception as exc:
                escapes += 1
                failures.append(f"{mutation.name} on {path}: {type(exc).__name__}: {exc}")
    assert cases >= 2500
    assert failures == [], f"{escapes} escapes of {cases * len(PATHS)} runs, e.g. {failures[:5]}"
    assert codes.get(errors.IMAGE_UNREADABLE, 0) > 0  # the corpus really was broken


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_a_truncated_multipage_tiff_is_unreadable_under_any_name(suffix):
    data = pictures.multipage_tiff()
    truncated = data[: len(data) // 2]  # the later pages are gone: Pillow raises TypeError "Missing dimensions"
    for path, run in PATHS.items():
        if path in ("first bytes", "header"):
            # Part of a file cannot prove it is truncated ("not known yet"), and a TIFF's header is read by the
            # bounded child that prepares it, never in the function's process (None: "ask the child")
            assert run(truncated) is None
            continue
        with pytest.raises(PermanentError) as raised:
            run(truncated)
        assert raised.value.code in (errors.IMAGE_UNREADABLE, errors.IMAGE_UNSUPPORTED)


def tiff_with_compression(scheme: int) -> bytes:
    """A TIFF whose compression tag names ``scheme`` (34712 is JPEG 2000, which Pillow cannot decode)."""
    buffer = io.BytesIO()
    pictures.picture(96, 80).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    for index in range(count):
        entry = ifd + 2 + 12 * index
        (tag,) = struct.unpack(order + "H", data[entry : entry + 2])
        if tag == 259:
            data[entry + 8 : entry + 10] = struct.pack(order + "H", scheme)
    return bytes(data)


def test_a_valid_but_unsupported_tiff_says_so_not_wrong_suffix():
    with pytest.raises(PermanentError) as raised:
        images.prepare_read(lambda: tiff_with_compression(34712), SAGEMAKER, verify=True)
    assert raised.value.code == errors.IMAGE_UNSUPPORTED
    assert "a TIFF file in a variant that cannot be decoded" in raised.value.message


def pillow_decodes(data: bytes) -> bool:
    """Whether Pillow itself, opened and loaded plainly, decodes the first frame."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # any failure is a "no"
        return False
    return True


def test_no_mutated_image_that_pillow_cannot_decode_gets_a_result():
    """A damaged file must not pass as a whole image. (A PNG's orientation lookup used to decode it and swallow
    the failure; Pillow then took the half-decoded image as done, and a PNG with one byte flipped in its pixels
    got a result.) JPEGs are left out: the function decodes them at a reduced DCT scale, where libjpeg may
    rightly read what its full-scale decode refuses."""
    passed = [
        mutation.name
        for mutation in mutations(MUTATIONS_PER_BASE)
        if not mutation.base.startswith("jpeg")
        and _prepares(mutation.data, SAGEMAKER)
        and not pillow_decodes(mutation.data)
    ]
    assert passed == []


def _prepares(data: bytes, limits: images.ImageLimits) -> bool:
    try:
        images.prepare_read(lambda: data, limits, verify=True)
    except PermanentError:
        return False
    return True


@pytest.mark.parametrize("interlaced", [False, True])
def test_a_png_with_one_byte_flipped_in_its_pixels_is_unreadable(interlaced):
    from tests.support import corpus

    picture = corpus.scene(640, 480)
    data = bytearray(corpus.interlaced_png(picture) if interlaced else pictures.encode(picture, "PNG"))
    data[len(data) // 2] ^= 0xFF  # inside the IDAT stream (the file is one IHDR, IDATs and IEND)

    for limits in (SAGEMAKER, images.REKOGNITION_BYTES):
        with pytest.raises(PermanentError) as raised:
            images.prepare_read(lambda: bytes(data), limits, verify=True)
        assert raised.value.code == errors.IMAGE_UNREADABLE
