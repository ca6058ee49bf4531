"""The embedded stack's Lambda control plane answers every Lambda operation the project calls, as the pinned
botocore sends it (its REST paths, with or without a trailing slash, and query strings)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest

from inferctl.emulator.lambda_api import LambdaApi, LocalFunction, LocalMapping
from inferctl.emulator.services import LocalModels, local_services
from tests.support.paths import ROOT

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:q"


@pytest.fixture
def lambda_client() -> Iterator[tuple[Any, LambdaApi, LocalMapping]]:
    api = LambdaApi()
    api.add_function(LocalFunction("fn", {"MIN_CONFIDENCE": "50"}, memory_mb=1024, timeout_seconds=60))
    mapping = api.add_mapping(LocalMapping("fn", QUEUE_ARN, 10))
    with local_services(LocalModels({}, lambda *_: b""), routes=[api]) as url:
        yield boto3.client("lambda", endpoint_url=url, region_name="us-east-1"), api, mapping


EXERCISED = {
    "get_function_configuration",
    "update_function_configuration",
    "list_event_source_mappings",
    "get_event_source_mapping",
    "update_event_source_mapping",
}


def test_every_lambda_operation_the_code_calls_is_exercised_here():
    operations = botocore.session.get_session().get_service_model("lambda").operation_names
    snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in operations}
    source = "\n".join(
        p.read_text(encoding="utf-8") for folder in ("inferctl", "lambdas") for p in (ROOT / folder).rglob("*.py")
    )
    called = {name for name in snake if re.search(rf"\.{name}\(", source)}
    assert called <= EXERCISED, f"not exercised against the embedded Lambda API: {sorted(called - EXERCISED)}"


def test_the_operations_answer_in_lambdas_shapes(lambda_client):
    client, api, mapping = lambda_client

    configuration = client.get_function_configuration(FunctionName="fn")
    assert configuration["Environment"]["Variables"] == {"MIN_CONFIDENCE": "50"}
    updated = client.update_function_configuration(
        FunctionName="fn",
        Environment={"Variables": {"MIN_CONFIDENCE": "70"}},
        RevisionId=configuration["RevisionId"],
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    with pytest.raises(client.exceptions.PreconditionFailedException):
        client.update_function_configuration(FunctionName="fn", RevisionId=configuration["RevisionId"])

    listed = client.list_event_source_mappings(FunctionName="fn")["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mapping.uuid]
    assert client.list_event_source_mappings()["EventSourceMappings"][0]["EventSourceArn"] == QUEUE_ARN
    assert client.get_event_source_mapping(UUID=mapping.uuid)["State"] == "Enabled"
    client.update_event_source_mapping(UUID=mapping.uuid, Enabled=False)
    assert client.list_event_source_mappings(FunctionName="fn")["EventSourceMappings"][0]["State"] == "Disabled"
    assert api.mappings[mapping.uuid].enabled is False
