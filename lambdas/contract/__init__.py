"""What more than one deployed function and the operator tools rely on, below both functions: value types, error
kinds, validation rules and what a setting is, the function's settings, thresholds, the result document and the
outcome table's row, S3 events and their ordering, the model services' declarations and control planes
(``backends``), the pace kept to a model's capacity, and the outcome stream. No Pillow, no function code; boto3
only where a control plane or the stream is called."""
