"""``make bench``: one command, one table, ``out/bench.json``. See docs/performance.md."""
