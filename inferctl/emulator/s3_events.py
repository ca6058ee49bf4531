"""S3's "Object Created" events to EventBridge as AWS sends them, in the emulator.

moto (5.2) routes S3 events to EventBridge rules, but its event differs from AWS's in what the function reads:
every event carries the same ``sequencer`` (the S3 User Guide's example value), the ETag field is ``eTag``
(AWS: ``etag``) and ``reason`` is ``ObjectCreated`` (AWS: the API
call, ``PutObject``). With one sequencer for every event, ordering two versions of a key could not be tested
through the emulator. ``install()`` replaces moto's sender with one that writes the event as the S3 User
Guide ("EventBridge event message structure") shows it, with sequencers that grow with every event, as S3's
do for one key. Idempotent; emulator only (the function never imports it).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from typing import Any

from inferctl.emulator.patching import once

# moto's event name suffix -> the API call S3 names in ``detail.reason``.
REASONS = {
    "Put": "PutObject",
    "Post": "PostObject",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}
DETAIL_TYPE = "Object Created"

_lock = threading.Lock()
_sequence = itertools.count(time.time_ns() // 1000)  # grows across emulator restarts too


def next_sequencer() -> str:
    """An S3-like sequencer: 18 upper-case hex digits, greater than every one handed out before."""
    with _lock:
        return f"{next(_sequence):018X}"


def object_created_event(account_id: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any]:
    """The event S3 sends to EventBridge for a created object (``event_name``: moto's ``s3:ObjectCreated:Put``)."""
    action = event_name.rsplit(":", 1)[-1]
    detail_object: dict[str, Any] = {
        "key": key.name,
        "size": key.size,
        "etag": key.etag.replace('"', ""),
        "sequencer": next_sequencer(),
    }
    if key.version_id and key.version_id != "null":
        detail_object["version-id"] = key.version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.s3",
        "account": account_id,
        "time": time.time(),  # moto's SQS target writes it as ISO 8601, as AWS sends it
        "region": bucket.region_name,
        "resources": [bucket.arn],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": detail_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": REASONS.get(action, action),
        },
    }


@once
def install() -> None:
    """Make moto send S3's EventBridge events in AWS's shape (created objects; other events stay moto's)."""
    from moto.events.models import events_backends
    from moto.s3 import notifications

    original = notifications._send_event_bridge_message

    def send(account_id: str, bucket: Any, event_name: Any, key: Any) -> None:
        name = str(getattr(event_name, "value", event_name))  # moto passes an enum member
        if not name.startswith("s3:ObjectCreated:"):
            original(account_id, bucket, event_name, key)
            return
        try:
            event = object_created_event(account_id, bucket, name, key)
            backend = events_backends[account_id][bucket.region_name]
            for bus in list(backend.event_buses.values()):
                for rule in list(bus.rules.values()):
                    if rule.state == "ENABLED":
                        rule.send_to_targets(event, transform_input=False)  # type: ignore[arg-type]
        except Exception:
            logging.getLogger(__name__).exception("S3 -> EventBridge event not sent for %s", key.name)

    notifications._send_event_bridge_message = send
