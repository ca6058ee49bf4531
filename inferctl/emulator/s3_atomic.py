"""S3 object requests one at a time, in the emulator, as atomic as S3's.

moto (5.2) checks a conditional PUT's ``If-None-Match`` / ``If-Match`` and then stores the object as two steps,
and makes the object visible before it sets its metadata: two writers can both pass the check, and a reader can
see a new object without its ``x-amz-meta-*`` (which makes the function's own result look forged). S3 applies a
PUT, its condition and its metadata atomically. ``install()`` serialises moto's object-level request handling
(GET, HEAD, PUT, COPY, DELETE of one object) under one lock, so each request sees the bucket before or after
another, never halfway. Idempotent; emulator only (the function never imports it).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from inferctl.emulator.patching import once

_lock = threading.RLock()


@once
def install() -> None:
    from moto.s3.responses import S3Response

    handle = S3Response._key_response

    @functools.wraps(handle)
    def one_at_a_time(self: Any, request: Any, full_url: str) -> Any:
        with _lock:
            return handle(self, request, full_url)

    S3Response._key_response = one_at_a_time  # type: ignore[method-assign]
