"""The embedded stack: moto's server for S3, SQS, KMS, CloudWatch Logs and CloudFormation; the local
services server for the model services; the resources from the stack's definitions; and the real handler
driven the way Lambda's SQS trigger drives it."""
