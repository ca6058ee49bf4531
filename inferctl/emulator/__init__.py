"""The embedded stack: moto's server for S3, SQS, KMS, CloudWatch Logs and CloudFormation; the local
services server for the model services (``models``: each backend's emulation, the real detector and the
stand-in); the resources from the stack's definitions; and the real handler driven the way Lambda's SQS trigger
drives it. It knows nothing of what runs on it (``inferctl/scenarios``) or of the operator's stack operations."""
