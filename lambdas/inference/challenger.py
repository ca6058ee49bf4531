"""A challenger model in shadow: a second model (another Rekognition version, a SageMaker endpoint, either way
round) that sees a sample of the images and whose findings are recorded in the result's ``challenger``
section, for side-by-side evaluation (``inferctl evaluate``) and promotion (``inferctl challenger promote``).

The primary's labels, thresholds and outcome never depend on it: the challenger runs after the primary has
answered, one attempt per image (never retried, so it never costs the primary a receive), and any failure is
recorded in its section and counted (``ChallengerErrors``), never raised. Sampling is deterministic per
object version, so a re-delivered image is sampled the same way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import backends, errors, rules
from .backends.base import ImageSource, InferenceBackend
from .errors import ProcessingError
from .model import ObjectRef
from .results import label_dict
from .thresholds import Thresholds
from .variables import Variable, read_all, render_number

ENV_PREFIX, CONTEXT_PREFIX = "CHALLENGER_", "challenger"


def _backend_or_off(name: str, raw: Any) -> str | None:
    value = rules.text(name, raw).lower()
    if value in ("", "none", "off"):
        return None
    return rules.backend(name, value, backends.REGISTERED)


BACKEND = Variable(
    "backend",
    "CHALLENGER_BACKEND",
    "challengerBackend",
    _backend_or_off,
    None,
    doc=f"a second model in shadow: {', '.join(backends.REGISTERED)} (unset: none)",
)
SAMPLE_PERCENT = Variable(
    "sample_percent",
    "CHALLENGER_SAMPLE_PERCENT",
    "challengerSamplePercent",
    rules.confidence,
    100.0,
    render=render_number,
    doc="percent of images the challenger also sees (deterministic per object version)",
)
OWN = (BACKEND, SAMPLE_PERCENT)


def model_variables(backend: str) -> tuple[Variable, ...]:
    """The challenger's model settings: its backend's variables, prefixed (``CHALLENGER_REKOGNITION_MODEL_ARN``,
    ``challengerRekognitionModelArn``...)."""
    return tuple(variable.prefixed(ENV_PREFIX, CONTEXT_PREFIX) for variable in backends.spec(backend).variables)


def all_variables() -> tuple[Variable, ...]:
    return OWN + tuple(variable for name in backends.REGISTERED for variable in model_variables(name))


@dataclass(frozen=True)
class ChallengerSettings:
    backend: str | None = None
    sample_percent: float = 100.0
    model: Any = None  # the challenger backend's settings

    @property
    def enabled(self) -> bool:
        return self.backend is not None and self.model is not None and self.model.model_id is not None

    @property
    def model_id(self) -> str | None:
        return None if self.model is None else self.model.model_id

    @property
    def spec(self) -> backends.BackendSpec:
        assert self.backend is not None
        return backends.spec(self.backend)

    @classmethod
    def read(cls, get: Callable[[Variable], Any], by: str) -> ChallengerSettings:
        own = read_all(OWN, get, by)
        backend = own["backend"]
        if backend is None:
            return cls(None, own["sample_percent"], None)
        values = read_all(model_variables(backend), get, by)
        model = backends.spec(backend).settings(values)
        if model.model_id is None:
            variable = next(
                v for v in model_variables(backend) if v.field == backends.spec(backend).model_variable.field
            )
            raise rules.ConfigError(
                str(getattr(variable, by) or variable.name), f"is not set; a {backend} challenger needs its model"
            )
        return cls(backend, own["sample_percent"], model)

    def to_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.backend is None:
            return env
        env[str(BACKEND.env)] = self.backend
        env[str(SAMPLE_PERCENT.env)] = SAMPLE_PERCENT.render(self.sample_percent)
        for variable in model_variables(self.backend):
            value = getattr(self.model, variable.field)
            if variable.env and variable.written and value is not None:
                env[variable.env] = variable.render(value)
        return env


def sampled(ref: ObjectRef, percent: float) -> bool:
    """Whether this object version is in the sample: the same answer on every delivery."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    identity = f"{ref.bucket}/{ref.key}@{ref.version_id or ref.etag or ''}".encode()
    bucket = int.from_bytes(hashlib.sha256(identity).digest()[:4], "big") % 10_000
    return bucket < percent * 100


class Challenger:
    def __init__(self, backend: InferenceBackend, backend_name: str, sample_percent: float) -> None:
        self.backend = backend
        self.backend_name = backend_name
        self.sample_percent = sample_percent

    def sampled(self, ref: ObjectRef) -> bool:
        return sampled(ref, self.sample_percent)

    def run(self, image: ImageSource, thresholds: Thresholds) -> dict[str, Any]:
        """The challenger's section of the result document. Never raises."""
        section: dict[str, Any] = {"backend": self.backend_name, "model_id": self.backend.model_id}
        started = time.perf_counter()
        try:
            detection = self.backend.detect(image, thresholds)
        except ProcessingError as exc:
            return {**section, "status": "error", "error": {"code": exc.code, "message": exc.message}}
        except Exception as exc:  # noqa: BLE001 - whatever the challenger does, the primary's outcome stands
            return {
                **section,
                "status": "error",
                "error": {"code": errors.UNEXPECTED_ERROR, "message": f"{type(exc).__name__}: {exc}"},
            }
        accepted, candidates, _ = thresholds.split(detection.labels)
        return {
            **section,
            "status": "ok",
            "labels": [label_dict(label) for label in accepted],
            "candidates": [label_dict(label) for label in candidates],
            "latency_ms": round(detection.latency_ms or (time.perf_counter() - started) * 1000, 3),
            "error": None,
        }


def build(settings: ChallengerSettings, options: backends.ClientOptions, client: Any = None) -> Challenger | None:
    """The challenger's adapter: one attempt per call (``total_max_attempts=1``), its own client, the same limits
    as the primary's; the whole call bounded by one attempt's time."""
    if not settings.enabled:
        return None
    spec = settings.spec
    if client is None:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=2,
            read_timeout=options.read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        client = boto3.client(spec.runtime_service, config=config)  # type: ignore[call-overload]
    one_attempt = replace(options, pace=None, call_timeout=min(options.call_timeout, options.read_timeout + 2))
    adapter = spec.create(settings.model, one_attempt, client)
    return Challenger(adapter, spec.name, settings.sample_percent)


def summary(section: Mapping[str, Any] | None) -> str:
    if not section:
        return "not sampled"
    if section.get("status") != "ok":
        return f"error {(section.get('error') or {}).get('code')}"
    return ", ".join(f"{label['name']} {label['confidence']:.0f}%" for label in section.get("labels", [])) or "none"
