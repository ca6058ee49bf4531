"""Amazon Rekognition Custom Labels as the deployment sees it: the settings that name the model, what IAM grants
for them, the capacity they buy, and the model version's lifecycle (describe, start, stop). The function's
adapter (DetectCustomLabels) is ``lambdas/inference/backends/rekognition.py``."""

from __future__ import annotations

from typing import Any, NamedTuple

from lambdas.contract import rules
from lambdas.contract.backends import control
from lambdas.contract.backends.control import Lifecycle, ModelStatus
from lambdas.contract.backends.grants import Arns, Grant
from lambdas.contract.backends.spec import BackendSpec
from lambdas.contract.variables import Variable

# Rekognition Custom Labels: about 5 transactions per second per inference unit (older AWS guidance).
DEFAULT_TPS_PER_INFERENCE_UNIT = 5


class RekognitionSettings(NamedTuple):
    model_arn: str | None
    project_name: str
    inference_units: int
    tps_per_inference_unit: int

    @property
    def model_id(self) -> str | None:
        return self.model_arn


MODEL_ARN = Variable(
    "model_arn",
    "REKOGNITION_MODEL_ARN",
    "rekognitionModelArn",
    rules.rekognition_model_arn,
    doc="model version ARN; IAM is scoped to it",
)
VARIABLES = (
    MODEL_ARN,
    Variable(
        "project_name",
        None,
        "rekognitionProjectName",
        rules.rekognition_project_name,
        "image-inference",
        doc="until a model ARN is set, IAM allows project/<name>/version/*",
    ),
    Variable(
        "inference_units",
        None,
        "inferenceUnits",
        lambda name, raw: rules.integer(name, raw, 1, 1000),
        1,
        doc="inference units the model runs with (capacity)",
    ),
    Variable(
        "tps_per_inference_unit",
        None,
        "tpsPerInferenceUnit",
        lambda name, raw: rules.integer(name, raw, 1, 1000),
        DEFAULT_TPS_PER_INFERENCE_UNIT,
        doc="calls per second one inference unit takes (capacity)",
    ),
)


def _model_versions(settings: RekognitionSettings, arns: Arns, sid: str, actions: tuple[str, ...]) -> Grant:
    """``actions`` on the configured model version; deployed before training (deploy, train, then set the ARN),
    on the project's versions."""
    if settings.model_arn:
        return Grant(sid, actions, (settings.model_arn,))
    return Grant(
        sid,
        actions,
        (arns.arn("rekognition", "project", f"{settings.project_name}/version/*"),),
        wildcard_reason="No model version exists before the first training; scoped to the project's versions "
        "until rekognitionModelArn is set",
    )


def _grants(settings: RekognitionSettings, arns: Arns) -> tuple[Grant, ...]:
    sid = "DetectWithConfiguredModel" if settings.model_arn else "DetectWithProjectModels"
    return (_model_versions(settings, arns, sid, ("rekognition:DetectCustomLabels",)),)


def _capacity(settings: RekognitionSettings) -> float:
    return float(settings.inference_units * settings.tps_per_inference_unit)


# --- lifecycle: DescribeProjects / DescribeProjectVersions / StartProjectVersion / StopProjectVersion ----------

# The service's statuses by what they mean for the queue (anything else, e.g. TRAINING_FAILED, EXPIRED: FAILED).
_STATES = {
    "RUNNING": control.READY,
    "STARTING": control.STARTING,
    "STOPPING": control.STOPPING,
    "STOPPED": control.STOPPED,
    "TRAINING_COMPLETED": control.STOPPED,  # trained, never started
    "COPYING_COMPLETED": control.STOPPED,
    "TRAINING_IN_PROGRESS": control.STARTING,
    "COPYING_IN_PROGRESS": control.STARTING,
}


def version_parts(model_arn: str) -> tuple[str, str]:
    """(project name, version name) of ``arn:...:project/<project>/version/<version>/<timestamp>``."""
    resource = model_arn.split(":", 5)[-1].split("/")
    if len(resource) < 5 or resource[0] != "project" or resource[2] != "version":
        raise ValueError(f"not a model version ARN: {model_arn}")
    return resource[1], resource[3]


class RekognitionControl:
    """A Custom Labels model version's lifecycle. Billing runs per inference unit per hour while it runs."""

    def __init__(self, model_arn: str, client: Any | None = None) -> None:
        self.model_arn = model_arn
        self.project, self.version = version_parts(model_arn)
        if client is None:
            import boto3

            client = boto3.client("rekognition")
        self._client: Any = client

    def _project_arn(self) -> str | None:
        projects = self._client.describe_projects(ProjectNames=[self.project]).get("ProjectDescriptions", [])
        return str(projects[0]["ProjectArn"]) if projects else None

    def describe(self) -> ModelStatus:
        project_arn = self._project_arn()
        found: list[dict[str, Any]] = []
        if project_arn:
            response = self._client.describe_project_versions(ProjectArn=project_arn, VersionNames=[self.version])
            found = [
                item
                for item in response.get("ProjectVersionDescriptions", [])
                if item.get("ProjectVersionArn") == self.model_arn
            ]
        if not found:
            where = f"project {self.project}" if project_arn else f"no project named {self.project}"
            return ModelStatus(self.model_arn, control.MISSING, "NOT_FOUND", detail=f"version {self.version}: {where}")
        version = found[0]
        status = str(version.get("Status", "UNKNOWN"))
        capacity = {
            key: version[key] for key in ("MinInferenceUnits", "MaxInferenceUnits") if version.get(key) is not None
        }
        return ModelStatus(
            self.model_arn,
            _STATES.get(status, control.FAILED),
            status,
            capacity=capacity,
            detail=str(version.get("StatusMessage", "")),
            can_start_stop=True,
        )

    def start(self, units: int) -> None:
        self._client.start_project_version(ProjectVersionArn=self.model_arn, MinInferenceUnits=units)

    def stop(self) -> None:
        self._client.stop_project_version(ProjectVersionArn=self.model_arn)


def _control(settings: RekognitionSettings, client: Any) -> RekognitionControl:
    assert settings.model_arn is not None
    return RekognitionControl(settings.model_arn, client)


def _control_grants(settings: RekognitionSettings, arns: Arns, start_stop: bool) -> tuple[Grant, ...]:
    # The configured version's project (its ARN names it); before training, the configured project name.
    project = version_parts(settings.model_arn)[0] if settings.model_arn else settings.project_name
    grants = [
        Grant(
            "FindProject",
            ("rekognition:DescribeProjects",),
            ("*",),
            wildcard_reason="DescribeProjects takes no resource-level permission; it finds the project's ARN, "
            "which DescribeProjectVersions needs",
        ),
        Grant(
            "DescribeModelVersions",
            ("rekognition:DescribeProjectVersions",),
            (arns.arn("rekognition", "project", f"{project}/*"),),
            wildcard_reason="The project ARN ends in its creation timestamp, unknown at deploy time; scoped to "
            "the configured project",
        ),
    ]
    if start_stop:
        actions = ("rekognition:StartProjectVersion", "rekognition:StopProjectVersion")
        grants.append(_model_versions(settings, arns, "StartStopConfiguredModel", actions))
    return tuple(grants)


SPEC = BackendSpec(
    name="rekognition",
    title="Amazon Rekognition Custom Labels",
    settings_type=RekognitionSettings,
    variables=VARIABLES,
    model_variable=MODEL_ARN,
    grants=_grants,
    capacity=_capacity,
    lifecycle=Lifecycle(service="rekognition", control=_control, grants=_control_grants, can_start_stop=True),
    runtime_service="rekognition",
)
