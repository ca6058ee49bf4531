"""The control-plane adapters' requests and parsing, against botocore's Stubber with the services' documented
response shapes (DescribeProjects / DescribeProjectVersions / StartProjectVersion / StopProjectVersion;
DescribeEndpoint / DescribeEndpointConfig), and what an endpoint that does not exist means for an image."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.contract import errors
from lambdas.contract.backends.control import MISSING, READY, STARTING, STOPPED, NotSupported
from lambdas.contract.backends.rekognition import RekognitionControl, version_parts
from lambdas.contract.backends.sagemaker import SageMakerControl, SageMakerSettings
from lambdas.contract.errors import TransientError
from lambdas.inference.backends.sagemaker import SageMakerBackend

ARN = "arn:aws:rekognition:eu-west-1:123456789012:project/bees/version/bees.2025-01-21T09.10.15/1737450615000"
PROJECT_ARN = "arn:aws:rekognition:eu-west-1:123456789012:project/bees/1737000000000"


def client(service: str) -> Any:
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return session.client(service)  # type: ignore[call-overload]


def test_the_project_and_version_come_from_the_model_arn():
    assert version_parts(ARN) == ("bees", "bees.2025-01-21T09.10.15")
    with pytest.raises(ValueError, match="not a model version ARN"):
        version_parts("arn:aws:rekognition:eu-west-1:123456789012:project/bees/1737000000000")


@pytest.mark.parametrize(
    ("service_status", "state"),
    [("RUNNING", READY), ("STARTING", STARTING), ("STOPPED", STOPPED), ("TRAINING_COMPLETED", STOPPED)],
)
def test_rekognition_status_finds_the_project_then_the_version(service_status, state):
    rekognition = client("rekognition")
    with Stubber(rekognition) as stub:
        stub.add_response(
            "describe_projects",
            {"ProjectDescriptions": [{"ProjectArn": PROJECT_ARN, "Status": "CREATED"}]},
            {"ProjectNames": ["bees"]},
        )
        stub.add_response(
            "describe_project_versions",
            {
                "ProjectVersionDescriptions": [
                    {"ProjectVersionArn": ARN, "Status": service_status, "MinInferenceUnits": 2, "StatusMessage": "ok"}
                ]
            },
            {"ProjectArn": PROJECT_ARN, "VersionNames": ["bees.2025-01-21T09.10.15"]},
        )
        found = RekognitionControl(ARN, rekognition).describe()
    assert (found.state, found.service_status) == (state, service_status)
    assert found.capacity == {"MinInferenceUnits": 2}
    assert found.can_start_stop is True


def test_a_rekognition_model_that_does_not_exist_is_missing():
    rekognition = client("rekognition")
    with Stubber(rekognition) as stub:
        stub.add_response("describe_projects", {"ProjectDescriptions": []}, {"ProjectNames": ["bees"]})
        found = RekognitionControl(ARN, rekognition).describe()
    assert found.state == MISSING
    assert "no project named bees" in found.detail


def test_rekognition_start_and_stop_send_the_version_arn_and_units():
    rekognition = client("rekognition")
    with Stubber(rekognition) as stub:
        stub.add_response(
            "start_project_version", {"Status": "STARTING"}, {"ProjectVersionArn": ARN, "MinInferenceUnits": 3}
        )
        stub.add_response("stop_project_version", {"Status": "STOPPING"}, {"ProjectVersionArn": ARN})
        control = RekognitionControl(ARN, rekognition)
        control.start(3)
        control.stop()
        stub.assert_no_pending_responses()


def test_a_serverless_endpoint_shows_its_memory_and_concurrency():
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "bees",
                "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/bees",
                "EndpointConfigName": "bees-config",
                "EndpointStatus": "InService",
                "CreationTime": "2025-01-01T00:00:00Z",
                "LastModifiedTime": "2025-01-01T00:00:00Z",
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "CurrentServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 20},
                    }
                ],
            },
            {"EndpointName": "bees"},
        )
        found = SageMakerControl("bees", sagemaker).describe()
    assert found.state == READY
    assert found.capacity == {"ServerlessMemoryMB": 4096, "ServerlessMaxConcurrency": 20}
    assert found.can_start_stop is False
    assert found.since == 1735689600.0  # LastModifiedTime, 2025-01-01T00:00:00Z


def test_a_real_time_endpoint_shows_its_instance_type_and_count():
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "bees",
                "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/bees",
                "EndpointConfigName": "bees-config-2",
                "EndpointStatus": "Creating",
                "CreationTime": "2025-01-01T00:00:00Z",
                "LastModifiedTime": "2025-01-01T00:00:00Z",
                "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
            },
            {"EndpointName": "bees"},
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "bees-config-2",
                "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/bees-config-2",
                "CreationTime": "2025-01-01T00:00:00Z",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
                ],
            },
            {"EndpointConfigName": "bees-config-2"},
        )
        found = SageMakerControl("bees", sagemaker).describe()
    assert found.state == STARTING
    assert found.capacity == {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge"}


def test_an_endpoint_that_does_not_exist_is_missing_and_cannot_be_started():
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stub:
        stub.add_client_error(
            "describe_endpoint", "ValidationException", 'Could not find endpoint "bees".', 400, {"EndpointName": "bees"}
        )
        control = SageMakerControl("bees", sagemaker)
        assert control.describe().state == MISSING
    with pytest.raises(NotSupported):
        control.start(1)


def test_invoking_an_endpoint_that_does_not_exist_is_model_not_ready_not_an_image_error():
    response: Any = {
        "Error": {"Code": "ValidationError", "Message": "Endpoint bees of account 123456789012 not found."},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "r-1"},
    }
    error = ClientError(response, "InvokeEndpoint")
    translated = SageMakerBackend._translate(error)
    assert isinstance(translated, TransientError)
    assert translated.code == errors.MODEL_NOT_READY


def test_a_serverless_endpoint_gets_payloads_within_4_mb():
    assert SageMakerSettings("e", "image/jpeg", "auto", serverless=True).max_payload_bytes == 4 * 1024 * 1024
    assert SageMakerSettings("e", "image/jpeg", "auto").max_payload_bytes == 6 * 1024 * 1024
    backend = SageMakerBackend("e", client=object(), max_payload_bytes=4 * 1024 * 1024)
    assert backend._limits.max_bytes == 4 * 1024 * 1024
