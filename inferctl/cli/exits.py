"""Every failure a user can cause, said in one line: what is wrong and what to do. No traceback (``--debug``)."""

from __future__ import annotations

from typing import Any

from inferctl.cli.common import EXIT_BUG, EXIT_LOST, EXIT_USAGE
from inferctl.evaluation.groundtruth import ManifestError
from inferctl.stack.dialect import QueryError
from inferctl.stack.errors import ConfigError, OperationFailed, TargetError, UsageError

# What an AWS error code usually means for an operator, and what to do about it.
ACCESS_HINT = "your credentials lack a permission this command needs: the operator policies are in iam/"
HINTS = {
    "AccessDenied": ACCESS_HINT,
    "AccessDeniedException": ACCESS_HINT,
    "UnauthorizedOperation": ACCESS_HINT,
    "ExpiredToken": "your session has expired: sign in again (aws sso login, or new credentials)",
    "ExpiredTokenException": "your session has expired: sign in again (aws sso login, or new credentials)",
    "InvalidClientTokenId": "the access key is not valid in this account or partition: check AWS_PROFILE",
    "UnrecognizedClientException": "the access key is not valid here: check AWS_PROFILE and the region",
    "ResourceInUseException": "the model is already changing state; `inferctl model status` shows which",
    "ResourceNotFoundException": "it does not exist (yet): check the stack's configuration (`inferctl model status`)",
    "ThrottlingException": "AWS throttled the call: try again in a moment",
}


def explain(exc: BaseException) -> tuple[int, str]:
    """(exit code, the one line) for a failure."""
    if isinstance(exc, ConfigError | TargetError | UsageError | ManifestError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, QueryError):
        return EXIT_USAGE, f"the query: {exc}"
    if isinstance(exc, OperationFailed):
        return EXIT_LOST, str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return EXIT_USAGE, f"{exc.filename}: no such file or folder"
    if isinstance(exc, OSError) and exc.filename:  # a folder given for a file, a file for a folder, no permission
        return EXIT_USAGE, f"{exc.filename}: {(exc.strerror or str(exc)).lower()}"
    aws = _aws(exc)
    if aws is not None:
        return EXIT_USAGE, aws
    return EXIT_BUG, f"unexpected {type(exc).__name__}: {exc} (a bug: run again with --debug for the traceback)"


def _aws(exc: BaseException) -> str | None:
    """The AWS SDK's failures an operator can fix: region, credentials, permissions, the network."""
    from botocore import exceptions as botocore

    if isinstance(exc, botocore.NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), pass --region, or set one in your profile"
    if isinstance(exc, botocore.NoCredentialsError | botocore.PartialCredentialsError):
        return "no AWS credentials: aws configure, aws sso login, or AWS_PROFILE=NAME"
    if isinstance(exc, botocore.TokenRetrievalError | botocore.SSOTokenLoadError | botocore.UnauthorizedSSOTokenError):
        return "your SSO session has expired or was never started: aws sso login"
    if isinstance(exc, botocore.ProfileNotFound):
        return f"{exc}: check AWS_PROFILE or --profile against ~/.aws/config"
    if isinstance(exc, botocore.EndpointConnectionError | botocore.ConnectTimeoutError):
        return f"cannot reach AWS ({exc}): check the network, the region and any AWS_ENDPOINT_URL"
    if isinstance(exc, botocore.ClientError):
        error: dict[str, Any] = dict(exc.response.get("Error", {}))
        code = str(error.get("Code", ""))
        operation = getattr(exc, "operation_name", "the call")
        hint = HINTS.get(code, "")
        message = str(error.get("Message", "")).rstrip(".")
        return f"{operation} refused: {code}: {message}" + (f". {hint}" if hint else "")
    return None
