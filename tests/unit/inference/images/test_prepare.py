"""Image preparation: untouched when the backend takes it, converted or downscaled when it does not, and a
specific permanent error when nothing can make it acceptable."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.inference import images
from lambdas.inference.images import REKOGNITION_BYTES, ImageLimits, PreparedImage, prepare_read
from tests.support import pictures


def prepare(data: bytes, limits: ImageLimits, *, verify: bool = False) -> PreparedImage:
    return prepare_read(lambda: data, limits, verify=verify)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_jpeg_within_limits_passes_through_byte_for_byte():
    data = pictures.jpeg(640, 480)
    prepared = prepare(data, REKOGNITION_BYTES)
    assert prepared.data is data
    assert prepared.facts.transformations == ()
    assert (prepared.facts.width, prepared.facts.height) == (640, 480)


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "BMP", "TIFF"])
def test_other_formats_become_jpeg_with_the_same_size(fmt):
    prepared = prepare(pictures.encode(pictures.picture(300, 200), fmt), REKOGNITION_BYTES)
    assert prepared.content_format == "JPEG"
    out = decoded(prepared.data)
    assert (out.format, out.size, out.mode) == ("JPEG", (300, 200), "RGB")
    assert prepared.facts.format == fmt
    assert prepared.facts.transformations[0] == f"converted_{fmt}_to_JPEG"


def test_large_images_are_downscaled_keeping_the_aspect_ratio():
    data = pictures.jpeg(5000, 2500)
    prepared = prepare(data, REKOGNITION_BYTES)
    out = decoded(prepared.data)
    assert max(out.size) <= 4096
    assert out.size[0] / out.size[1] == pytest.approx(2.0, rel=0.01)
    assert (prepared.facts.width, prepared.facts.height) == (5000, 2500)
    assert (prepared.facts.sent_width, prepared.facts.sent_height) == out.size
    assert any(step.startswith("downscaled_to_") for step in prepared.facts.transformations)


def test_large_jpegs_are_decoded_at_reduced_scale():
    limits = ImageLimits(max_bytes=6 * images.MB, max_side=2048)
    prepared = prepare(pictures.jpeg(4000, 3000), limits)
    # A 1/2-scale DCT decode (2000 px) is within 90% of the 2048 px target: no full decode, no resample.
    assert (prepared.facts.sent_width, prepared.facts.sent_height) == (2000, 1500)
    assert decoded(prepared.data).size == (2000, 1500)


def test_images_over_the_byte_limit_are_reencoded_within_it():
    noisy = Image.effect_noise((1500, 1500), 120).convert("RGB")
    data = pictures.encode(noisy, "PNG")
    limits = ImageLimits(max_bytes=300_000, max_side=4096, min_side=64)
    assert len(data) > limits.max_bytes
    prepared = prepare(data, limits)
    assert len(prepared.data) <= limits.max_bytes
    assert min(decoded(prepared.data).size) >= 64


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", errors.IMAGE_EMPTY),
        (b"plain text pretending to be a photo\n", errors.IMAGE_UNREADABLE),
        (pictures.jpeg()[:400], errors.IMAGE_UNREADABLE),
        (pictures.png(1, 1), errors.IMAGE_TOO_SMALL),
        (pictures.png(63, 500), errors.IMAGE_TOO_SMALL),
        (pictures.png(3000, 100), errors.IMAGE_ASPECT_RATIO),
        (pictures.png_header_only(30000, 30000), errors.IMAGE_TOO_LARGE),
    ],
    ids=["zero-bytes", "text", "truncated-jpeg", "1x1", "too-narrow", "30-to-1", "png-bomb-header"],
)
def test_images_nothing_can_fix_fail_permanently_with_a_specific_code(data, code):
    with pytest.raises(PermanentError) as raised:
        prepare(data, REKOGNITION_BYTES)
    assert raised.value.code == code
    assert raised.value.message


def test_decompression_bomb_guard_stays_on():
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(PermanentError) as raised:
        images.read_header(pictures.png_header_only(30000, 30000), complete=True)
    assert "decompression-bomb" in raised.value.message


def test_header_reading_is_inconclusive_only_for_partial_reads():
    data = pictures.jpeg(640, 480)
    header = images.read_header(data[: images.HEADER_BYTES], complete=len(data) <= images.HEADER_BYTES)
    assert header is not None
    assert (header.format, header.width, header.height, header.orientation) == ("JPEG", 640, 480, 1)
    garbage = b"\x00" * images.HEADER_BYTES
    assert images.read_header(garbage, complete=False) is None  # the first 64 KB of something unknown
    with pytest.raises(PermanentError) as raised:
        images.read_header(garbage[:100], complete=True)
    assert raised.value.code == errors.IMAGE_UNREADABLE


def test_verify_catches_a_truncated_jpeg_that_would_pass_through():
    data = pictures.jpeg(640, 480)
    truncated = data[: len(data) * 2 // 3]
    assert prepare(truncated, REKOGNITION_BYTES).data is truncated  # the header alone looks fine
    with pytest.raises(PermanentError) as raised:
        prepare(truncated, REKOGNITION_BYTES, verify=True)
    assert raised.value.code == errors.IMAGE_UNREADABLE


def test_truncated_jpeg_needing_conversion_is_unreadable():
    # The header is intact, so it is only discovered when decoding for the downscale.
    data = pictures.jpeg(5000, 3000)
    with pytest.raises(PermanentError) as raised:
        prepare(data[: len(data) // 2], REKOGNITION_BYTES)
    assert raised.value.code == errors.IMAGE_UNREADABLE


def test_cmyk_jpeg_becomes_rgb():
    data = pictures.encode(pictures.picture(200, 200).convert("CMYK"), "JPEG")
    prepared = prepare(data, REKOGNITION_BYTES)
    assert decoded(prepared.data).mode == "RGB"
    assert "converted_CMYK_to_RGB" in prepared.facts.transformations


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    sixteen = Image.new("I;16", (128, 128))
    sixteen.putdata([v * 4 for v in range(128 * 128)])
    prepared = prepare(pictures.encode(sixteen, "PNG"), REKOGNITION_BYTES)
    out = decoded(prepared.data)
    assert out.mode == "RGB"
    red_extrema = out.getextrema()[0]
    assert isinstance(red_extrema, tuple)
    assert red_extrema[1] > 200  # the bright end survived the scaling
    assert any(step.startswith("converted_I") for step in prepared.facts.transformations)


def test_png_with_alpha_passes_as_png_and_is_flattened_when_converted():
    rgba = pictures.png(200, 200, mode="RGBA")
    assert prepare(rgba, REKOGNITION_BYTES).data is rgba  # Rekognition takes RGBA PNGs
    big = pictures.encode(pictures.picture(5000, 200 * 5, mode="RGBA"), "PNG")
    prepared = prepare(big, REKOGNITION_BYTES)
    assert decoded(prepared.data).mode == "RGB"
    assert "flattened_RGBA_alpha_onto_white" in prepared.facts.transformations


def test_exif_orientation_is_applied_and_recorded():
    prepared = prepare(pictures.exif_rotated_jpeg(320, 200, orientation=6), REKOGNITION_BYTES)
    assert decoded(prepared.data).size == (200, 320)  # rotated upright
    assert "exif_orientation_6_applied" in prepared.facts.transformations


def test_animated_gif_uses_its_first_frame():
    prepared = prepare(pictures.animated_gif(frames=3), REKOGNITION_BYTES)
    assert "first_frame_of_3" in prepared.facts.transformations
    assert decoded(prepared.data).format == "JPEG"
