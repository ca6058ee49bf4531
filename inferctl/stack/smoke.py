"""The deployment smoke test: one generated image through the real pipeline, timed, then cleaned up.

It proves the whole path an image takes (the bucket's notification, the queue, the trigger, the function, the
model, the result written next to the image) rather than any one piece. Every version of the image is deleted;
its result is not the tool's to delete (nobody but the function changes a result key), and the bucket's
``expire-smoke-tests`` rule removes what is under ``_smoke/`` after a day. When the result does not come, it says
why: the error document, the dead-letter queue, or the last error the function logged for the image.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass, field

from inferctl.stack import deadletters, uploads
from inferctl.stack.outcomes import ImageState
from inferctl.stack.target import Target
from stacks.definitions import SMOKE_FOLDER


@dataclass
class SmokeResult:
    key: str
    state: str  # "ok", "error", "dead_letter", "pending"
    seconds: float
    labels: list[tuple[str, float]] = field(default_factory=list)
    reason: str | None = None
    cleaned: int = 0  # object versions deleted

    @property
    def passed(self) -> bool:
        return self.state == "ok"


def smoke_image() -> bytes:
    from inferctl.samples import scene  # Pillow, loaded when the image is made, not with the CLI

    buffer = io.BytesIO()
    scene(7, ["sun", "tree", "house"]).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run(target: Target, timeout: float = 120.0, poll_seconds: float = 1.0, keep: bool = False) -> SmokeResult:
    relative = f"{SMOKE_FOLDER}{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.jpg"
    started = time.monotonic()
    (upload,) = uploads.upload_many(target, [(relative, smoke_image())], progress=False)
    try:
        found = uploads.wait_for(
            target,
            [upload.key],
            timeout=timeout,
            progress=False,
            poll_seconds=poll_seconds,
            versions={upload.key: upload.version_id},
        )[upload.key]
        result = SmokeResult(upload.key, found.state, time.monotonic() - started)
        result.labels, result.reason = _explain(target, found)
    finally:
        cleaned = 0 if keep else remove(target, [upload.key])
    result.cleaned = cleaned
    return result


def _explain(target: Target, found: ImageState) -> tuple[list[tuple[str, float]], str | None]:
    if found.state == "ok" and found.document:
        labels = [(str(label["name"]), float(label["confidence"])) for label in found.document.get("labels", [])]
        return labels, None
    if found.state == "error" and found.document:
        error = found.document.get("error") or {}
        return [], f"error document: {error.get('code')}: {error.get('message')}"
    if found.state == "dead_letter" and found.dead_letter:
        logged = deadletters.why(target, found.dead_letter)
        return [], f"in the dead-letter queue (message {found.dead_letter.message_id})" + (
            f"; last error logged: {logged}" if logged else ""
        )
    logged = last_logged_error(target, found.key)
    return [], "no result before the timeout" + (
        f"; last error logged: {logged}" if logged else "; the function logged nothing for this image"
    )


def last_logged_error(target: Target, key: str) -> str | None:
    """The last error the function logged about ``key`` (from its log group), if any."""
    return deadletters.last_logged_error(target, key, lambda line: line.get("key") == key or key in json.dumps(line))


def remove(target: Target, keys: list[str]) -> int:
    """Delete every version (and delete marker) of each key; returns how many were deleted."""
    s3 = target.client("s3")
    doomed: list[dict[str, str]] = []
    for key in keys:
        listed = s3.list_object_versions(Bucket=target.bucket, Prefix=key)
        for item in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            if item["Key"] == key:
                doomed.append({"Key": key, "VersionId": item["VersionId"]})
    if doomed:
        s3.delete_objects(Bucket=target.bucket, Delete={"Objects": doomed, "Quiet": True})
    return len(doomed)
