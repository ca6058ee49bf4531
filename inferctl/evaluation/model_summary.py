"""A Rekognition Custom Labels model's own evaluation, to show beside ours: DescribeProjects (the project's
ARN from the version ARN's project name), DescribeProjectVersions, then the summary file its
``EvaluationResult.Summary.S3Object`` points to. Its metrics and thresholds are 0-1; we show percent."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_VERSION_ARN = re.compile(r"^arn:[^:]+:rekognition:[^:]*:\d{12}:project/(?P<project>[^/]+)/version/(?P<version>[^/]+)/")


@dataclass(frozen=True)
class LabelSummary:
    label: str
    threshold: float  # percent
    precision: float | None
    recall: float | None
    f1: float | None
    test_images: int | None


def read(rekognition: Any, s3: Any, model_arn: str) -> dict[str, LabelSummary]:
    """The model's per-label evaluation (empty when the model has none, e.g. still training)."""
    match = _VERSION_ARN.match(model_arn)
    if not match:
        return {}
    projects = rekognition.describe_projects(ProjectNames=[match["project"]]).get("ProjectDescriptions", [])
    if not projects:
        return {}
    versions = rekognition.describe_project_versions(
        ProjectArn=projects[0]["ProjectArn"], VersionNames=[match["version"]]
    ).get("ProjectVersionDescriptions", [])
    location = ((versions[0].get("EvaluationResult") or {}).get("Summary") or {}).get("S3Object") if versions else None
    if not location:
        return {}
    summary = json.loads(s3.get_object(Bucket=location["Bucket"], Key=location["Name"])["Body"].read())
    found = {}
    for item in summary.get("LabelEvaluationResults", []):
        metrics = item.get("Metrics", {})
        found[item["Label"]] = LabelSummary(
            label=item["Label"],
            threshold=100.0 * float(metrics.get("Threshold", 0.0)),
            precision=metrics.get("Precision"),
            recall=metrics.get("Recall"),
            f1=metrics.get("F1Score"),
            test_images=item.get("NumberOfTestingImages"),
        )
    return found
