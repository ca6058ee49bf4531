"""Which stack a command works on: a deployed one (its CloudFormation outputs, found with the usual AWS
credentials and region) or the embedded one (the state file ``serve`` writes). Commands get clients from the
target and never care which it is.

boto3 is imported where a session or client is made: the CLI's help and its usage errors never load it (about a
third of a second).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path("out/embedded.json")
CONNECTIONS = 64  # botocore's default is 10: concurrent reads beyond it would wait for (or discard) connections
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
        """A client with a connection for every concurrent read (``outcomes.READ_WORKERS``); the rest of its
        configuration from the usual places (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, the profile)."""
        from botocore.config import Config

        config = Config(max_pool_connections=CONNECTIONS)
        url = self.endpoints.get(service) or self.endpoint_url
        if url:
            return self.session.client(service, endpoint_url=url, config=config)
        return self.session.client(service, config=config)


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


def deployed(
    stack_name: str, session: Any | None = None, *, profile: str | None = None, region: str | None = None
) -> Target:
    """A deployed stack, found with the usual AWS configuration, as boto3 and the AWS CLI read it: the profile
    (``profile``, AWS_PROFILE, SSO included) and the region (``region``, AWS_REGION, AWS_DEFAULT_REGION, the
    profile's)."""
    local = os.environ.get("AWS_ENDPOINT_URL", "")
    if any(host in local for host in ("127.0.0.1", "localhost", "[::1]")):
        print(
            f"warning: AWS_ENDPOINT_URL is {local}, an embedded stack's endpoint (a leftover "
            '`eval "$(inferctl env --embedded)"`?): --stack asks it, not AWS; `eval "$(inferctl env --unset)"` '
            "undoes it",
            file=sys.stderr,
        )
    import boto3
    from botocore.exceptions import ClientError

    if session is None:
        session = boto3.Session(profile_name=profile, region_name=region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise TargetError(
            f"no AWS region to find stack {stack_name!r} in: set AWS_REGION (or AWS_DEFAULT_REGION), pass --region, "
            "or set one in your profile"
        )
    cloudformation = session.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise TargetError(
                f"cannot describe stack {stack_name!r}: no such stack in {session.region_name} "
                "(check --stack, the region and the account)"
            ) from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return from_outputs(session, outputs, None, f"stack {stack_name}", stack_name=stack_name)


def read_state(state_file: Path = DEFAULT_STATE) -> dict[str, Any]:
    """The state file ``inferctl serve`` writes; TargetError when there is none (the stack is not running)."""
    if not state_file.exists():
        raise TargetError(f"{state_file} not found: start the embedded stack with `inferctl serve` first")
    state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    return state


def environment(state: dict[str, Any]) -> dict[str, str]:
    """The variables that point the AWS CLI and SDKs at the embedded stack: its endpoints (the standard
    AWS_ENDPOINT_URL and per-service ones), its dummy credentials and its region."""
    variables = {"AWS_ENDPOINT_URL": state["endpoint_url"]}
    if state.get("services_url"):
        for name in ("LAMBDA", "REKOGNITION", "SAGEMAKER", "SAGEMAKER_RUNTIME"):
            variables[f"AWS_ENDPOINT_URL_{name}"] = state["services_url"]
    variables.update(state.get("credentials") or {})
    variables["AWS_REGION"] = variables["AWS_DEFAULT_REGION"] = state["region"]
    return variables


def embedded(state_file: Path = DEFAULT_STATE) -> Target:
    """The embedded stack started by ``inferctl serve`` (its state file names its endpoint)."""
    import boto3

    state = read_state(state_file)
    credentials = state.get("credentials") or {}
    session = boto3.Session(
        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
        region_name=state["region"],
    )
    return from_outputs(session, state, state["endpoint_url"], f"embedded stack at {state['endpoint_url']}")
