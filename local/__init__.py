"""The embedded stack: the same resources as the CDK stack on a local AWS emulator, and the real handler
driven the way Lambda's SQS trigger drives it."""
