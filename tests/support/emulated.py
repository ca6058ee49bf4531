"""Reaching into the embedded emulator (moto, in this process) where an API cannot: time that has passed."""

from __future__ import annotations

from datetime import timedelta


def backdate_uploads(bucket: str, prefix: str, age: timedelta) -> int:
    """Make the embedded S3's objects under ``prefix`` look ``age`` older (their LastModified), as if they had
    been uploaded then: how a test shows images whose waiting window has long passed without waiting for it.
    Returns how many objects were backdated."""
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    count = 0
    for key in backend.buckets[bucket].keys.values():
        if key.name.startswith(prefix):
            key.last_modified = key.last_modified - age
            count += 1
    return count
