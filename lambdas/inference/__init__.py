"""The inference function: ``handler.py`` is its entry; ``pipeline.py`` what happens to one message; ``core/``
its vocabulary; ``images/`` headers and preparation; ``backends/`` the model services behind one port."""
