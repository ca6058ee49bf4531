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
from typing import Any

from lambdas.contract import errors
from lambdas.contract.errors import ProcessingError
from lambdas.contract.results import label_dict
from lambdas.contract.settings import ChallengerSettings
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import ObjectRef
from lambdas.contract.variables import CONNECT_TIMEOUT_SECONDS
from lambdas.inference import backends
from lambdas.inference.backends.base import InferenceBackend
from lambdas.inference.images import ImageSource


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
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=options.read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        client = boto3.client(spec.runtime_service, config=config)  # type: ignore[call-overload]
    one_attempt = options._replace(pace=None, call_timeout=min(options.call_timeout, options.read_timeout + 2))
    adapter = backends.adapter(spec.name)(settings.model, one_attempt, client)
    return Challenger(adapter, spec.name, settings.sample_percent)
