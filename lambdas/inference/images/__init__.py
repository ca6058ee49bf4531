"""Images: their headers read without decoding (``headers``) and their preparation within a backend's limits
and the execution environment's memory (``prepare``). This package only hands ``prepare``'s names on."""

from lambdas.inference.images.prepare import (
    HEADER_BYTES,
    MB,
    REKOGNITION_BYTES,
    REKOGNITION_S3_OBJECT,
    ImageLimits,
    ImageSource,
    MemoryBudget,
    PreparedImage,
    budget_bytes,
    decode_cost,
    decode_failure,
    fits_as_is,
    prepare_read,
    prepare_source,
    read_header,
)

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
