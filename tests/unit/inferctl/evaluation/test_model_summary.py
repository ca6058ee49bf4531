"""A Rekognition model's own evaluation summary, read the way AWS documents it (requests checked with
botocore's Stubber; the summary's shape from the Custom Labels developer guide)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
from botocore.stub import Stubber

from inferctl.evaluation.model_summary import read

MODEL = "arn:aws:rekognition:us-east-1:123456789012:project/bees/version/bees.2026-11-01T10.00.00/1793527200000"
PROJECT = "arn:aws:rekognition:us-east-1:123456789012:project/bees/1790000000000"
SUMMARY = {
    "Version": 1,
    "EvaluationDetails": {"ProjectVersionArn": MODEL, "Labels": ["bee"], "NumberOfTestingImages": 40},
    "AggregatedEvaluationResults": {"Metrics": {"Precision": 0.99, "Recall": 0.9, "F1Score": 0.943}},
    "LabelEvaluationResults": [
        {
            "Label": "bee",
            "NumberOfTestingImages": 40,
            "Metrics": {"Threshold": 0.612, "Precision": 0.99, "Recall": 0.9, "F1Score": 0.943},
        }
    ],
}


class S3:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.asked.append((Bucket, Key))
        return {"Body": io.BytesIO(json.dumps(SUMMARY).encode())}


def test_the_models_own_thresholds_come_from_its_evaluation_summary():
    client = boto3.client("rekognition", region_name="us-east-1")
    stub = Stubber(client)
    stub.add_response(
        "describe_projects",
        {"ProjectDescriptions": [{"ProjectArn": PROJECT, "Status": "CREATED"}]},
        {"ProjectNames": ["bees"]},
    )
    stub.add_response(
        "describe_project_versions",
        {
            "ProjectVersionDescriptions": [
                {
                    "ProjectVersionArn": MODEL,
                    "Status": "TRAINING_COMPLETED",
                    "EvaluationResult": {
                        "F1Score": 0.943,
                        "Summary": {"S3Object": {"Bucket": "output", "Name": "evaluation/summary.json"}},
                    },
                }
            ]
        },
        {"ProjectArn": PROJECT, "VersionNames": ["bees.2026-11-01T10.00.00"]},
    )
    s3 = S3()
    with stub:
        found = read(client, s3, MODEL)
    stub.assert_no_pending_responses()
    assert s3.asked == [("output", "evaluation/summary.json")]
    bee = found["bee"]
    assert (round(bee.threshold, 1), bee.precision, bee.recall, bee.f1, bee.test_images) == (61.2, 0.99, 0.9, 0.943, 40)


def test_a_model_id_that_is_not_a_custom_labels_version_has_no_summary():
    assert read(None, None, "stand-in-shapes") == {}
