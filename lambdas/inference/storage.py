"""S3 reads and writes, with S3 errors translated into the project's error kinds.

Writes of outcome documents are conditional: first ``If-None-Match: *`` (a result key almost never exists, so
it is not read before), then ``If-Match`` on the ETag of what the refused write found there. Two invocations
working on two versions of one image at the same moment cannot overwrite each other blindly; the loser reads
and decides (``pipeline.py``). One image costs the function one GET (its current version: the header, the
version and ETag, and the rest of the bytes from the same response when the backend sends bytes) and one PUT.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, NamedTuple

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, ProcessingError, TransientError
from lambdas.contract.results import (
    FOREIGN,
    LEGACY,
    MAX_RESULT_DOCUMENT_BYTES,
    PRODUCER,
    PRODUCER_METADATA,
    document_kind,
    image_key_of,
)
from lambdas.contract.values import ObjectRef
from lambdas.contract.variables import CONNECT_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Larger objects are not images we can do anything with inside a Lambda's memory.
MAX_READ_BYTES = 100 * 1024 * 1024
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class Existing(NamedTuple):
    """What sits at a result key: one of our outcome documents (``legacy``: written before the producer mark, its
    ordering fields never taken at their word), or something else (``foreign``, and why)."""

    document: dict[str, Any] | None
    etag: str
    foreign: bool = False
    reason: str = ""
    legacy: bool = False


class Head(NamedTuple):
    """The first bytes of an object's current version, and what S3 says that version is. ``rest``: the open
    response body past ``data`` when the whole object was asked for (read it with ``read_rest``, or close it)."""

    data: bytes
    version_id: str | None
    etag: str | None
    size: int | None
    rest: Any = None

    @property
    def complete(self) -> bool:
        """``data`` is the whole object."""
        return self.size is not None and len(self.data) >= self.size

    def close(self) -> None:
        """Release the response body if it was not read (its connection is not reused)."""
        if self.rest is not None:
            with contextlib.suppress(Exception):
                self.rest.close()


class ObjectGone(PermanentError):
    """The key has no current version (deleted: a delete marker, or gone from an unversioned bucket)."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.OBJECT_NOT_FOUND, message)


class WriteConflict(TransientError):
    """The result key changed since it was read (``If-Match`` / ``If-None-Match`` failed)."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.RESULT_WRITE_FAILED, message)


def existing(raw: bytes, etag: str, image_key: str, metadata: Any = None) -> Existing:
    """What sits at a result key, as the function judges it: one of its documents about ``image_key``; a
    document of its from before the mark (``legacy``: replaced, If-Match its ETag, only while the version being
    processed is the key's current one); or something else (``foreign``: never replaced)."""
    try:
        document = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        return Existing(None, etag, foreign=True, reason="it is not JSON")
    kind = document_kind(document, image_key, metadata)
    if kind == FOREIGN:
        return Existing(None, etag, foreign=True, reason="it is not a result document written by this function")
    return Existing(document, etag, legacy=kind == LEGACY)


def too_large(size: int, etag: str) -> Existing:
    return Existing(
        None,
        etag,
        foreign=True,
        reason=f"it holds {size} bytes, more than a result document ({MAX_RESULT_DOCUMENT_BYTES}); it was not read",
    )


class S3Storage:
    """Reads images and writes outcome documents, SSE-KMS with the stack's key when one is configured."""

    def __init__(
        self, client: S3Client | Any | None = None, kms_key_arn: str | None = None, read_timeout: int = 30
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout, max_pool_connections=64)
            client = boto3.client("s3", config=config)
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
        """The first ``length`` bytes of the event's version (a ranged GET); the whole object when shorter."""
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, "Range": f"bytes=0-{length - 1}"}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        try:
            data: bytes = self._client.get_object(**kwargs)["Body"].read(length)
        except Exception as exc:  # noqa: BLE001 - translated below
            if _code(exc) == "InvalidRange":
                return b""  # an empty object has no byte 0
            raise _translate(exc, f"read s3://{ref.bucket}/{ref.key}") from None
        return data

    def head_current(self, bucket: str, key: str, length: int, *, whole: bool = False) -> Head:
        """The first bytes of the key's *current* version and its version id and ETag, from one GET that both
        reads the header and tells whether a notification still describes the current object. ``whole``: ask
        for the whole object and keep the rest of the body open (``Head.rest``) for ``read_rest``; otherwise a
        ranged GET of ``length`` bytes."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if not whole:
            kwargs["Range"] = f"bytes=0-{length - 1}"
        try:
            response = self._client.get_object(**kwargs)
            body = response["Body"]
            data: bytes = body.read(length)
        except Exception as exc:  # noqa: BLE001 - translated below
            if _code(exc) == "InvalidRange":  # an empty object: no bytes, but it exists
                return self._head_empty(bucket, key)
            if _code(exc) in NOT_FOUND_CODES:
                raise ObjectGone(f"s3://{bucket}/{key} has no current version (deleted)") from None
            raise _translate(exc, f"read s3://{bucket}/{key}") from None
        total = _total_size(response.get("ContentRange"), response.get("ContentLength"))
        rest = None
        if whole and (total is None or len(data) < total):
            rest = body
        else:
            body.close()
        return Head(data, response.get("VersionId"), _etag(response.get("ETag")), total, rest)

    def read_rest(self, ref: ObjectRef, head: Head) -> bytes:
        """The whole object: ``head.data`` and the rest of the same response. When that response cannot be
        finished (a connection cut mid-body) the event's version is read again with its own GET."""
        if head.complete:
            return head.data
        if head.rest is None:
            return self.read(ref)
        if head.size is not None and head.size > MAX_READ_BYTES:
            head.close()
            raise PermanentError(errors.IMAGE_TOO_LARGE, f"{head.size} bytes; the limit is {MAX_READ_BYTES} bytes")
        try:
            tail: bytes = head.rest.read(MAX_READ_BYTES + 1 - len(head.data))
        except Exception:  # noqa: BLE001 - the response broke off: read it again, by version
            return self.read(ref)
        finally:
            head.close()
        data = head.data + tail
        if head.size is not None and len(data) < head.size:  # cut short without an error: read it again
            return self.read(ref)
        if len(data) > MAX_READ_BYTES:
            raise PermanentError(errors.IMAGE_TOO_LARGE, f"more than {MAX_READ_BYTES} bytes")
        return data

    def _head_empty(self, bucket: str, key: str) -> Head:
        try:
            response = self._client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - translated below
            raise _translate(exc, f"read s3://{bucket}/{key}") from None
        return Head(b"", response.get("VersionId"), _etag(response.get("ETag")), 0)

    def read_result(self, bucket: str, key: str) -> Existing | None:
        """What sits at a result key, or None when nothing does. More than ``MAX_RESULT_DOCUMENT_BYTES`` is
        never read: it cannot be ours."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            error = _translate(exc, f"read s3://{bucket}/{key}")
            if error.code == errors.OBJECT_NOT_FOUND:
                return None
            raise error from None
        etag = _etag(response.get("ETag")) or ""
        body = response["Body"]
        size = response.get("ContentLength")
        try:
            if isinstance(size, int) and size > MAX_RESULT_DOCUMENT_BYTES:
                return too_large(size, etag)
            raw: bytes = body.read(MAX_RESULT_DOCUMENT_BYTES + 1)
            if len(raw) > MAX_RESULT_DOCUMENT_BYTES:
                return too_large(len(raw), etag)
        except Exception as exc:  # noqa: BLE001 - a read cut short is a storage fault
            raise _translate(exc, f"read s3://{bucket}/{key}") from None
        finally:
            body.close()
        return existing(raw, etag, image_key_of(key), response.get("Metadata") or {})

    def write_json(
        self,
        bucket: str,
        key: str,
        document: dict[str, Any],
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        """Write a document; with ``if_match`` / ``if_absent``, only if the key is still as it was read
        (WriteConflict otherwise)."""
        body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "ContentType": "application/json; charset=utf-8",
            "Metadata": {PRODUCER_METADATA: PRODUCER},
        }
        if if_match:
            kwargs["IfMatch"] = f'"{if_match}"'
        elif if_absent:
            kwargs["IfNoneMatch"] = "*"
        if self._kms_key_arn:
            kwargs.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self._kms_key_arn, BucketKeyEnabled=True)
        try:
            self._client.put_object(**kwargs)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in CONFLICT_CODES:
                raise WriteConflict(f"s3://{bucket}/{key} changed since it was read") from None
            translated = _translate(exc, f"write s3://{bucket}/{key}")
            raise TransientError(
                errors.RESULT_WRITE_FAILED, translated.message, request_id=translated.request_id
            ) from None


def _etag(raw: Any) -> str | None:
    return raw.strip('"') if isinstance(raw, str) and raw else None


def _total_size(content_range: Any, length: Any) -> int | None:
    """The object's size from ``Content-Range: bytes 0-65535/123456`` (or the length of a whole object)."""
    if isinstance(content_range, str) and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    return int(length) if isinstance(length, int) else None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


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
