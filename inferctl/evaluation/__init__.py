"""Evaluation against ground truth: the formats labelled data comes in (``groundtruth``), matching predictions
to it (``matching``), precision / recall / F1 across thresholds with recommendations (``metrics``), and the
report people look at (``report``)."""
