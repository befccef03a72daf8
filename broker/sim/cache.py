"""A thread-safe LRU map bounded by the bytes its values hold.

The market model keeps per-(token, day) tick tapes and bars here. Values are computed outside the
lock: two threads racing on one key compute it twice, which is harmless because every value is a
deterministic function of its key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def array_bytes(value: Any) -> int:
    """Bytes held by the numpy arrays of a slotted dataclass (plus a small fixed overhead)."""
    total = 256
    for name in type(value).__slots__:
        part = getattr(value, name)
        if isinstance(part, np.ndarray):
            total += part.nbytes
        elif hasattr(part, "__slots__"):
            total += array_bytes(part)
    return total


class ByteBoundedLru:
    """Least-recently-used map whose values' total weight stays within ``max_bytes``."""

    def __init__(self, max_bytes: int, weigh: Callable[[Any], int] = array_bytes) -> None:
        self._data: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_bytes = max_bytes
        self._weigh = weigh
        self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The cached value for ``key``, computing and storing it on a miss."""
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                found: V = hit[0]
                return found
        value = make()
        weight = self._weigh(value)
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, weight)
            self._bytes += weight
            while self._bytes > self._max_bytes and len(self._data) > 1:
                _, (_, dropped) = self._data.popitem(last=False)
                self._bytes -= dropped
        return value
