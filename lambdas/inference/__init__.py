"""Image inference Lambda: S3 notifications arrive through SQS, labels land next to the image as JSON.

Modules import each other relatively so the package runs both as ``inference`` (the Lambda asset root) and
as ``lambdas.inference`` (the repository root, for tests, the CDK app and the embedded stack).
"""
