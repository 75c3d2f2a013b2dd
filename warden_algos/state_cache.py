"""A serve process's recent states, by the sha256 of their bytes: so a streaming caller can name the
state it got back instead of resending it.

Bounded in bytes (least recently used first out); a state larger than the whole cache is not kept.
States are kept decoded (bytes and typed state), so a hit also saves decoding. A miss is
``STATE_NOT_FOUND``, which a caller answers by resending the state itself, so the cache
is only ever an optimisation: evicting, restarting or running several workers changes speed, never
answers. Only states the process decoded and checked (or produced) enter it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from warden_algos.interfaces.errors import StateNotFound

if TYPE_CHECKING:
    from warden_algos.interfaces.run_state import Fitted


def not_held(sha256: str) -> StateNotFound:
    """The one answer to a state named by sha256 that this process does not hold, whether it
    keeps states at all (serve) or not (run): the same request gets the same bytes from both."""
    return StateNotFound(
        f"this process does not hold the state {sha256[:12]}... (a one-shot run holds none; "
        "serve keeps recent ones): send the state itself (detect.state)",
        field="detect.state_sha256",
    )


class StateCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, Fitted] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, sha256: object) -> bool:
        return sha256 in self._items

    def put(self, fitted: Fitted) -> None:
        """Keep a checked state (decoded and typed: a hit skips decoding), by its sha256."""
        sha256 = fitted.sha256
        if sha256 in self._items:
            self._items.move_to_end(sha256)
            return
        if len(fitted.state) > self.max_bytes:
            return
        self._items[sha256] = fitted
        self.size += len(fitted.state)
        while self.size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.size -= len(evicted.state)

    def get(self, sha256: str) -> Fitted:
        found = self._items.get(sha256)
        if found is None:
            self.misses += 1
            raise not_held(sha256)
        self.hits += 1
        self._items.move_to_end(sha256)
        return found
