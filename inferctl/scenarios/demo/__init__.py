"""The demo's content: generated scenes, a colour-blob model that stands in for a trained one, and the run
that ``make demo`` starts."""
