"""What the operator tool does to a stack, deployed (its CloudFormation outputs) or embedded (its state file):
find it, upload and read results, change its configuration, re-run and audit, inspect its dead letters, drive its
model, evaluate it against ground truth. The command line (``inferctl.cli``) calls these; they never call it."""
