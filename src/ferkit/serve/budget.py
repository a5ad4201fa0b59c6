"""A shared byte budget for the event loop: bounds memory held by requests at once.

Two uses in the server: request bodies buffered in memory (``try_take``: over budget the
request is refused with 503 at once) and decoded images (``take``: a request waits, FIFO,
until earlier ones have been answered and their pixels freed, within its deadline).

Examples:
    >>> import asyncio
    >>> async def demo():
    ...     budget = ByteBudget(100)
    ...     first = await budget.take(80)
    ...     refused = budget.try_take(30)
    ...     waiter = asyncio.ensure_future(budget.take(30))
    ...     await asyncio.sleep(0)
    ...     early = waiter.done()
    ...     budget.give_back(first)
    ...     await waiter
    ...     return refused, early, budget.used
    >>> asyncio.run(demo())
    (False, False, 30)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class ByteBudget:
    """``capacity`` bytes shared by coroutines of one event loop (not thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_take(self, amount: int) -> bool:
        """Take ``amount`` now if it fits and nobody waits; ``False`` otherwise."""
        if self._waiters or self.used + amount > self.capacity:
            return False
        self.used += amount
        return True

    async def take(self, amount: int) -> int:
        """Wait until ``amount`` (at most the capacity) fits; returns what was taken."""
        amount = min(amount, self.capacity)
        if self.try_take(amount):
            return amount
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((amount, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(amount)  # granted just as the caller gave up
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._waiters.remove((amount, waiter))
                self._wake()
            raise
        return amount

    def give_back(self, amount: int) -> None:
        self.used -= amount
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            amount, waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            if self.used + amount > self.capacity:
                return
            self._waiters.popleft()
            self.used += amount
            waiter.set_result(None)
