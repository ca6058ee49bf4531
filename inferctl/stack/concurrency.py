"""Many reads at once, bounded: in flight (threads) and in memory (a chunk of items at a time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Reads in flight at once when a tool reads many documents: S3 serves thousands of GETs per second per prefix,
# so one machine's threads (and the JSON parsing, one core under the GIL) are the limit; the chunk bounds how
# many documents are held at once, whatever the bucket's size.
READ_WORKERS = 32


CHUNK = 256


def concurrently(
    items: Iterable[T], read: Callable[[T], R], workers: int = READ_WORKERS, chunk: int = CHUNK
) -> Iterator[tuple[T, R]]:
    """``(item, read(item))`` in the items' order, ``workers`` reads at a time, ``chunk`` items held at once."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        batch: list[T] = []
        for item in items:
            batch.append(item)
            if len(batch) == chunk:
                yield from zip(batch, pool.map(read, batch), strict=True)
                batch = []
        yield from zip(batch, pool.map(read, batch), strict=True)
