"""The items of an iterator computed on a worker thread ahead of their consumer, as far ahead as
a budget allows."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

R = TypeVar("R")


def computed_ahead(items: Iterator[R], weight: Callable[[R], int], budget: int, name: str) -> Iterator[R]:
    """The items of ``items``, in order. A worker thread (named ``name``) advances ``items``
    (so computes them) while the consumer uses the ones before, and stops while the items
    computed and not yet used up weigh more than ``budget`` (an item is used up when the consumer
    asks for the next one). So memory holds a budget's worth of items, whatever their number,
    and the consumer waits only when the worker is behind.

    An error of ``items`` is raised to the consumer after the items before it; closing the
    generator early stops the worker after the item it is on."""
    lane: _Lane[R] = _Lane()
    worker = threading.Thread(target=lane.fill, args=(items, weight, budget), name=name, daemon=True)
    worker.start()
    try:
        while True:
            result, used = lane.take()
            yield result
            lane.release(used)
    except _End:
        return
    finally:
        lane.stop()
        worker.join()


class _End(Exception):
    """The worker has no more results."""


class _Lane(Generic[R]):
    """The results between the worker and the consumer, and what they weigh."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: deque[tuple[R, int]] = deque()
        self._held = 0  # weight of the results computed and not used up
        self._done = False
        self._stopped = False
        self._error: BaseException | None = None

    def fill(self, items: Iterator[R], weight: Callable[[R], int], budget: int) -> None:
        try:
            for result in items:
                with self._cond:
                    used = weight(result)
                    self._ready.append((result, used))
                    self._held += used
                    self._cond.notify_all()
                    self._cond.wait_for(lambda: self._held <= budget or self._stopped)
                    if self._stopped:
                        return
        except BaseException as exc:  # given to the consumer, which raises it
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def take(self) -> tuple[R, int]:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._ready) or self._done)
            if self._ready:
                return self._ready.popleft()
            if self._error is not None:
                raise self._error
            raise _End

    def release(self, used: int) -> None:
        with self._cond:
            self._held -= used
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
