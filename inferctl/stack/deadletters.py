"""The dead-letter queue of a stack: what sits there and why (from the function's logs), and the redrive."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inferctl.stack.target import Target
from lambdas.contract.events import keys_in


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    keys: tuple[str, ...]
    receive_count: int
    body: str


def dead_letters(sqs: Any, dlq_url: str, limit: int = 1000, hold_seconds: int = 30) -> list[DeadLetter]:
    """Peek at the DLQ without consuming it. Each received message stays hidden for ``hold_seconds`` so the next
    receive brings new ones (a receive with no visibility timeout keeps answering with the same few), and at the
    end every message seen is made visible again at once. Nothing is deleted."""
    seen: dict[str, DeadLetter] = {}
    handles: dict[str, str] = {}
    empty = 0
    try:
        while len(seen) < limit and empty < 2:
            messages = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hold_seconds,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            empty = 0 if messages else empty + 1
            for message in messages:
                handles[message["MessageId"]] = message["ReceiptHandle"]
                attributes = message.get("Attributes", {})
                seen[message["MessageId"]] = DeadLetter(
                    message_id=message["MessageId"],
                    keys=tuple(keys_in(message["Body"])),  # the function's own parser: every shape it takes
                    receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
                    body=message["Body"],
                )
    finally:
        _release(sqs, dlq_url, list(handles.items()))
    return list(seen.values())


def _release(sqs: Any, queue_url: str, handles: list[tuple[str, str]]) -> None:
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, (_, handle) in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


@dataclass(frozen=True)
class DeadLetterReport:
    letter: DeadLetter
    last_error: str | None


def why(target: Target, letter: DeadLetter) -> str | None:
    """The last error the function logged for this message (from its CloudWatch log group); when it logged none,
    how the invocations it was part of ended, if Lambda ended one of them (out of memory, out of time)."""
    logged = last_logged_error(target, letter.message_id, lambda line: line.get("message_id") == letter.message_id)
    return logged or invocation_ended(target, letter.message_id)


# How Lambda's platform.report says an invocation was ended, in words.
_ENDINGS = {
    "Runtime.OutOfMemory": "killed for using more than its memory size",
    "Runtime.ExitError": "ended by its runtime exiting",
    "timeout": "stopped at its timeout",
}


def invocation_ended(target: Target, message_id: str) -> str | None:
    """Why the last invocation that received this message and that Lambda ended (its ``platform.report`` status
    not ``success``) ended: the function logs the messages of each batch at risk (one received before, or one of
    its images decoded in a bounded child) with the invocation's request id."""
    requests = [
        str(line.get("function_request_id"))
        for line in _log_lines(target, message_id)
        if message_id in (line.get("message_ids") or []) and line.get("function_request_id")
    ]
    reasons = []
    for request in dict.fromkeys(requests):
        for line in _log_lines(target, request):
            record = line.get("record") if line.get("type") == "platform.report" else None
            if isinstance(record, dict) and record.get("requestId") == request and record.get("status") != "success":
                ending = record.get("errorType") or record.get("status")
                detail = _ENDINGS.get(str(ending), f"ended ({ending})")
                reasons.append(f"{ending}: the invocation {request} that held this message was {detail}")
    return reasons[-1] if reasons else None


def _log_lines(target: Target, term: str) -> list[dict[str, Any]]:
    """The function's JSON log lines that mention ``term`` (none without a log group or the permission)."""
    if not target.log_group:
        return []
    try:
        events = (
            target.client("logs")
            .filter_log_events(logGroupName=target.log_group, filterPattern=f'"{term}"', limit=1000)
            .get("events", [])
        )
    except Exception:  # noqa: BLE001 - the reason is a nicety; the outcome itself is what matters
        return []
    lines = []
    for event in events:
        try:
            line = json.loads(event["message"])
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def last_logged_error(target: Target, term: str, about: Callable[[dict[str, Any]], bool]) -> str | None:
    """The last ``error_code: error`` the function logged on a line that mentions ``term`` and is ``about``
    what is asked (a message id, an image key); None without a log group or the permission to read it."""
    reasons = [
        f"{line['error_code']}: {line.get('error', '')}".strip()
        for line in _log_lines(target, term)
        if line.get("error_code") and about(line)
    ]
    return reasons[-1] if reasons else None


def inspect_dlq(target: Target) -> list[DeadLetterReport]:
    letters = dead_letters(target.client("sqs"), target.dead_letter_queue_url)
    return [DeadLetterReport(letter, why(target, letter)) for letter in letters]


def redrive(target: Target) -> int:
    """Move every dead letter back to the source queue; returns how many moved."""
    sqs = target.client("sqs")
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=target.dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            sqs.send_message(QueueUrl=target.queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=target.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
