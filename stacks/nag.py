"""cdk-nag acknowledgements: each names one finding (rule and resource) with why it does not apply."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Token, Validations
from aws_cdk import aws_iam as iam


def spelled(value: str, pseudo: str) -> str:
    """How cdk-nag spells a stack attribute in a finding: the value if known at synth, else the pseudo-parameter."""
    return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value


def acknowledge_wildcards(role: iam.IRole, reasons: Mapping[str, str]) -> None:
    """cdk-nag IAM5, acknowledged per resource with its reason (never the whole rule)."""
    Validations.of(role).acknowledge(
        *(
            Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
            for resource, reason in reasons.items()
        )
    )
