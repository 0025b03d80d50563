"""The cyclic garbage collector, paused while a batch's objects are made and freed."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a moment (it is process-wide).

    Polling, parsing and storing a batch allocate tens of thousands of objects (records,
    models, then the columns built from them) and no reference cycles: the collections
    those allocations set off scan the batch's live objects, and once enough survive, the
    whole heap. They took close to half of the parse time, two thirds of the store's CPU
    and half of the confluent-kafka consumer's. Never pause across a wait on Kafka: other
    threads go on allocating meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
