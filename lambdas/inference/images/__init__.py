"""Images: their headers read without decoding (``headers``), what preparing them costs and the environment's
budget (``budget``), Pillow's work (``decode``), the bounded child for what cannot be costed exactly
(``sandbox``), and the way each image takes (``prepare``). This package only hands their names on."""

from lambdas.inference.images.budget import MB, MemoryBudget, budget_bytes, decode_cost
from lambdas.inference.images.decode import (
    REKOGNITION_BYTES,
    REKOGNITION_S3_OBJECT,
    ImageLimits,
    PreparedImage,
    decode_failure,
    fits_as_is,
)
from lambdas.inference.images.prepare import HEADER_BYTES, ImageSource, prepare_read, prepare_source, read_header

__all__ = [
    "HEADER_BYTES",
    "MB",
    "REKOGNITION_BYTES",
    "REKOGNITION_S3_OBJECT",
    "ImageLimits",
    "ImageSource",
    "MemoryBudget",
    "PreparedImage",
    "budget_bytes",
    "decode_cost",
    "decode_failure",
    "fits_as_is",
    "prepare_read",
    "prepare_source",
    "read_header",
]
