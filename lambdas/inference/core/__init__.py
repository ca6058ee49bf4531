"""The inference function's vocabulary: value types, error kinds, validation rules, thresholds, the result
document, S3 events and their ordering, and what a setting is. Pure: no AWS, no Pillow, no third-party
imports; everything above imports it."""
