#!/usr/bin/env python3
"""CDK entry point: read and validate context, build the stack. No AWS calls at synth time."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

# Before jsii starts its Node process (at the first aws_cdk import): `npx cdk ls` run by hand would otherwise print
# jsii's Node end-of-life banner through this process (the Makefile exports the same for its own verbs).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from lambdas.contract.rules import ConfigError
from stacks.config import StackConfig, cdk_json_context, refuse_unknown_keys
from stacks.inference_stack import ImageInferenceStack


def build_app(
    app: cdk.App | None = None, *, bundle: bool = True, overrides: Mapping[str, Any] | None = None
) -> tuple[cdk.App, ImageInferenceStack]:
    """The app with a stack and cdk-nag's AwsSolutions checks. Raises ConfigError on bad context.
    ``overrides`` (context keys) add a further stack to the same app, e.g. another ``stackName``."""
    app = app or cdk.App(context=cdk_json_context())
    extra = dict(overrides or {})
    refuse_unknown_keys({**app.node.get_all_context(), **extra})
    config = StackConfig.from_context(lambda key: extra[key] if key in extra else app.node.try_get_context(key))
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    config.refuse_foreign_arns(account, region)
    stack = ImageInferenceStack(
        app,
        config.stack_name,
        config=config,
        bundle=bundle,
        description="Serverless image inference: S3 -> SQS -> Lambda -> Rekognition Custom Labels / SageMaker",
        env=cdk.Environment(account=account, region=region),
    )
    for key, value in config.tags.items():
        cdk.Tags.of(stack).add(key, value)  # every taggable resource: cost allocation, ownership
    if config.permissions_boundary_arn:
        boundary = iam.ManagedPolicy.from_managed_policy_arn(
            stack, "PermissionsBoundary", config.permissions_boundary_arn
        )
        iam.PermissionsBoundary.of(stack).apply(boundary)  # every role the stack creates
    if not overrides:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> int:
    try:
        app, _ = build_app()
    except ConfigError as exc:
        print(f"Invalid CDK context: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
