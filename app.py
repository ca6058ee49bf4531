#!/usr/bin/env python3
"""CDK entry point: read and validate context, build the stack. No AWS calls at synth time."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lambdas.inference.rules import ConfigError
from stacks.config import StackConfig, cdk_json_context
from stacks.inference_stack import ImageInferenceStack


def build_app(app: cdk.App | None = None, *, bundle: bool = True) -> tuple[cdk.App, ImageInferenceStack]:
    """The app with its one stack and cdk-nag's AwsSolutions checks. Raises ConfigError on bad context."""
    app = app or cdk.App(context=cdk_json_context())
    config = StackConfig.from_context(app.node.try_get_context)
    stack = ImageInferenceStack(
        app,
        config.stack_name,
        config=config,
        bundle=bundle,
        description="Serverless image inference: S3 -> SQS -> Lambda -> Rekognition Custom Labels / SageMaker",
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
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
