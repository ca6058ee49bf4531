"""S3 reads and writes, with S3 errors translated into the project's error kinds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import PermanentError, ProcessingError, TransientError
from .model import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Larger objects are not images we can do anything with inside a Lambda's memory.
MAX_READ_BYTES = 100 * 1024 * 1024
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class S3Storage:
    """Reads images and writes result documents, SSE-KMS with the stack's key when one is configured."""

    def __init__(self, client: S3Client | Any | None = None, kms_key_arn: str | None = None) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", config=Config(connect_timeout=5, read_timeout=30, max_pool_connections=64))
        self._client = client
        self._kms_key_arn = kms_key_arn

    def read(self, ref: ObjectRef) -> bytes:
        """The object's bytes (the event's version when there is one)."""
        if ref.size is not None and ref.size > MAX_READ_BYTES:
            raise PermanentError(errors.IMAGE_TOO_LARGE, f"{ref.size} bytes; the limit is {MAX_READ_BYTES} bytes")
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        try:
            response = self._client.get_object(**kwargs)
            body = response["Body"]
            data: bytes = body.read(MAX_READ_BYTES + 1)
        except Exception as exc:  # noqa: BLE001 - translated below
            raise _translate(exc, f"read s3://{ref.bucket}/{ref.key}") from None
        if len(data) > MAX_READ_BYTES:
            raise PermanentError(errors.IMAGE_TOO_LARGE, f"more than {MAX_READ_BYTES} bytes")
        return data

    def read_head(self, ref: ObjectRef, length: int) -> bytes:
        """The first ``length`` bytes (a ranged GET); the whole object when it is shorter."""
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, "Range": f"bytes=0-{length - 1}"}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        try:
            data: bytes = self._client.get_object(**kwargs)["Body"].read(length)
        except Exception as exc:  # noqa: BLE001 - translated below
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "InvalidRange":
                return b""  # an empty object has no byte 0
            raise _translate(exc, f"read s3://{ref.bucket}/{ref.key}") from None
        return data

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        """A JSON document, or None when there is none (or it is not a JSON object)."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
            document = json.loads(response["Body"].read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        except Exception as exc:  # noqa: BLE001
            error = _translate(exc, f"read s3://{bucket}/{key}")
            if error.code == errors.OBJECT_NOT_FOUND:
                return None
            raise error from None
        return document if isinstance(document, dict) else None

    def write_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "ContentType": "application/json; charset=utf-8",
        }
        if self._kms_key_arn:
            kwargs.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self._kms_key_arn, BucketKeyEnabled=True)
        try:
            self._client.put_object(**kwargs)
        except Exception as exc:  # noqa: BLE001
            translated = _translate(exc, f"write s3://{bucket}/{key}")
            raise TransientError(
                errors.RESULT_WRITE_FAILED, translated.message, request_id=translated.request_id
            ) from None


def _translate(exc: Exception, action: str) -> ProcessingError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
        if code in NOT_FOUND_CODES:
            return PermanentError(
                errors.OBJECT_NOT_FOUND, f"cannot {action}: the object no longer exists ({code})", request_id=request_id
            )
        return TransientError(
            errors.STORAGE_UNAVAILABLE,
            f"cannot {action}: {code} {error.get('Message', '')}".rstrip(),
            request_id=request_id,
        )
    return TransientError(errors.STORAGE_UNAVAILABLE, f"cannot {action}: {exc!r}")
