"""The inference function: ``handler.py`` is its entry; ``pipeline.py`` what happens to one message; ``images/``
headers and preparation; ``backends/`` the model services' adapters behind one port. Its vocabulary and settings are
the shared contract, ``lambdas/contract``."""
