"""Which stack a command works on: a deployed one (its CloudFormation outputs, found with the usual AWS
credentials and region) or the embedded one (the state file ``serve`` writes). Commands get clients from the
target and never care which it is."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

DEFAULT_STATE = Path("out/embedded.json")
REQUIRED_OUTPUTS = ("BucketName", "InputPrefix", "QueueUrl", "DeadLetterQueueUrl")


class TargetError(RuntimeError):
    """The stack cannot be found or lacks an output the CLI needs."""


@dataclass(frozen=True)
class Target:
    session: Any
    bucket: str
    input_prefix: str
    queue_url: str
    dead_letter_queue_url: str
    log_group: str | None
    endpoint_url: str | None = None
    description: str = ""
    function_name: str | None = None
    stack_name: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)  # service -> URL (the embedded stack's own)
    outputs: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        url = self.endpoints.get(service) or self.endpoint_url
        if url:
            return self.session.client(service, endpoint_url=url)
        return self.session.client(service)


def from_outputs(
    session: Any,
    outputs: dict[str, Any],
    endpoint_url: str | None,
    description: str,
    stack_name: str | None = None,
) -> Target:
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise TargetError(f"{description} lacks the outputs {', '.join(missing)}")
    log_group = outputs.get("LogGroupName") or (
        f"/aws/lambda/{outputs['FunctionName']}" if outputs.get("FunctionName") else None
    )
    return Target(
        session=session,
        bucket=outputs["BucketName"],
        input_prefix=outputs["InputPrefix"],
        queue_url=outputs["QueueUrl"],
        dead_letter_queue_url=outputs["DeadLetterQueueUrl"],
        log_group=log_group,
        endpoint_url=endpoint_url,
        description=description,
        function_name=outputs.get("FunctionName"),
        stack_name=stack_name,
        # The embedded stack serves the Lambda control plane and the model services itself.
        endpoints=dict.fromkeys(("lambda", "rekognition", "sagemaker"), outputs["services_url"])
        if outputs.get("services_url")
        else {},
        outputs=dict(outputs),
    )


def deployed(stack_name: str, session: Any | None = None) -> Target:
    """A deployed stack, found with the usual AWS credentials and region (profile, env, SSO...)."""
    session = session or boto3.Session()
    cloudformation = session.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:  # noqa: BLE001 - reported to the user as one clear line
        raise TargetError(f"cannot describe stack {stack_name!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return from_outputs(session, outputs, None, f"stack {stack_name}", stack_name=stack_name)


def embedded(state_file: Path = DEFAULT_STATE) -> Target:
    """The embedded stack started by ``inferctl serve`` (its state file names its endpoint)."""
    if not state_file.exists():
        raise TargetError(f"{state_file} not found: start the embedded stack with `inferctl serve` first")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    credentials = state.get("credentials") or {}
    session = boto3.Session(
        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
        region_name=state["region"],
    )
    return from_outputs(session, state, state["endpoint_url"], f"embedded stack at {state['endpoint_url']}")
