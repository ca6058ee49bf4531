"""Inference backends behind one port. ``build_backend`` creates only the one the settings name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ImageSource, InferenceBackend

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["ImageSource", "InferenceBackend", "build_backend"]


def build_backend(settings: Settings, client: object | None = None) -> InferenceBackend:
    """The configured backend. Imports (and creates a client for) that backend only."""
    if settings.backend == "rekognition":
        from .rekognition import RekognitionBackend

        assert settings.rekognition_model_arn is not None
        return RekognitionBackend(
            settings.rekognition_model_arn,
            client=client,
            pool_size=settings.record_concurrency,
            read_timeout=settings.backend_read_timeout_seconds,
        )
    from .sagemaker import SageMakerBackend

    assert settings.sagemaker_endpoint_name is not None
    return SageMakerBackend(
        endpoint_name=settings.sagemaker_endpoint_name,
        content_type=settings.sagemaker_content_type,
        response_format=settings.sagemaker_response_format,
        class_names=settings.sagemaker_class_names,
        max_image_side=settings.sagemaker_max_image_side,
        client=client,
        pool_size=settings.record_concurrency,
        read_timeout=settings.backend_read_timeout_seconds,
    )
