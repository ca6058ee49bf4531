"""The dead-letter queue of a stack: what sits there and why (from the function's logs), and the redrive."""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import outcomes
from .outcomes import DeadLetter
from .target import Target


@dataclass(frozen=True)
class DeadLetterReport:
    letter: DeadLetter
    last_error: str | None


def why(target: Target, letter: DeadLetter) -> str | None:
    """The last error the function logged for this message (from its CloudWatch log group)."""
    if not target.log_group:
        return None
    logs = target.client("logs")
    try:
        events = logs.filter_log_events(
            logGroupName=target.log_group, filterPattern=f'"{letter.message_id}"', limit=100
        ).get("events", [])
    except Exception:  # noqa: BLE001 - the reason is a nicety; the letter itself is what matters
        return None
    reasons = []
    for event in events:
        try:
            line = json.loads(event["message"])
        except (json.JSONDecodeError, TypeError):
            continue
        if line.get("message_id") == letter.message_id and line.get("error_code"):
            reasons.append(f"{line['error_code']}: {line.get('error', '')}".strip())
    return reasons[-1] if reasons else None


def inspect_dlq(target: Target) -> list[DeadLetterReport]:
    letters = outcomes.dead_letters(target.client("sqs"), target.dead_letter_queue_url)
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
