"""The model controller: a second function from the same asset, run every minute, that pauses the inference
function's SQS trigger while the model cannot answer (``handler.py``; its decisions: ``decide.py``)."""
