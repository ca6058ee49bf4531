"""The functions the stack deploys, as one asset: ``inference`` (S3 notifications arrive through SQS, labels
land next to the image as JSON) and ``controller`` (pauses the trigger while the model cannot answer). The asset's
root holds this package, so the code imports itself as ``lambdas.…`` in Lambda as in the repository. Only what
runs in Lambda lives here: the embedded stack's emulations are the operator tool's (``inferctl/emulator``)."""
