"""CDK infrastructure: one stack composed of a few named constructs."""
