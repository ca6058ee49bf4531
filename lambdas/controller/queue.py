"""The queue as the controller sees it: its backlog, and the waiting messages sent again before the queue's
retention would drop them (while the trigger is paused, the controller is the only one that receives)."""

from __future__ import annotations

from typing import Any


def queue_depth(sqs: Any, queue_url: str) -> tuple[int, int, float | None]:
    """(waiting, in flight, the queue's retention in seconds)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
            "MessageRetentionPeriod",
        ],
    )["Attributes"]
    waiting = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesDelayed", 0)
    )
    retention = attributes.get("MessageRetentionPeriod")
    return (
        waiting,
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        float(retention) if retention else None,
    )


# Copies are held back this long (SQS's maximum delay), so that one sweep never receives its own copies.
REFRESH_DELAY_SECONDS = 900
REFRESH_HOLD_SECONDS = 120  # a received original stays hidden this long while its copy is sent
REFRESH_MARK = "inference-refresh"  # message attribute: which sweep sent the copy
REFRESH_BATCHES_PER_RUN = 500  # 5,000 messages a run; a larger queue is finished by the next runs


def refresh_queue(sqs: Any, queue_url: str, sweep: str, batches: int = REFRESH_BATCHES_PER_RUN) -> tuple[int, bool]:
    """Send every waiting message again as a new message (the same body and attributes, marked with ``sweep``)
    and delete the original, so that the queue's retention counts from now. Returns (messages refreshed,
    whether the sweep is complete). Safe to repeat and to stop half-way: a message is deleted only once its
    copy was accepted, and a copy and its original processed both end as one outcome (the function's result
    keys and conditional writes); every message received is sent again, so receives do not accumulate
    towards the dead-letter queue."""
    refreshed = 0
    for _ in range(batches):
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=REFRESH_HOLD_SECONDS,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return refreshed, True
        fresh = [m for m in messages if _mark(m) != sweep]
        seen_again = [m for m in messages if _mark(m) == sweep]
        if seen_again:  # this sweep's own copies: release them; the sweep has gone round
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(seen_again)
                ],
            )
        if fresh:
            entries = []
            for index, message in enumerate(fresh):
                attributes = {
                    name: {
                        key: value
                        for key, value in attribute.items()
                        if key in ("DataType", "StringValue", "BinaryValue")
                    }
                    for name, attribute in (message.get("MessageAttributes") or {}).items()
                    if name != REFRESH_MARK
                }
                attributes[REFRESH_MARK] = {"DataType": "String", "StringValue": sweep}
                entries.append(
                    {
                        "Id": str(index),
                        "MessageBody": message["Body"],
                        "DelaySeconds": REFRESH_DELAY_SECONDS,
                        "MessageAttributes": attributes,
                    }
                )
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            sent = {item["Id"] for item in response.get("Successful", [])}
            done = [m for index, m in enumerate(fresh) if str(index) in sent]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            refreshed += len(done)
        if seen_again and not fresh:
            return refreshed, True
    return refreshed, False


def _mark(message: dict[str, Any]) -> str | None:
    attribute = (message.get("MessageAttributes") or {}).get(REFRESH_MARK) or {}
    value = attribute.get("StringValue")
    return value if isinstance(value, str) else None
