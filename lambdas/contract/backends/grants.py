"""What a backend asks of IAM: the statements the function (and the model controller) need, and how ARNs are
spelled in the deployment's partition, region and account."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Grant(NamedTuple):
    """An IAM statement the function needs. ``wildcard_reason`` says why a wildcard resource is the
    narrowest that works (it becomes the cdk-nag IAM5 acknowledgement)."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    wildcard_reason: str | None = None


class Arns(Protocol):
    """Builds ARNs in the deployment's partition, region and account (CDK tokens at synth, strings elsewhere)."""

    def arn(self, service: str, resource: str, name: str) -> str: ...
