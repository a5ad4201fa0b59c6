"""A small asyncio micro-batcher: requests that arrive together run as one model call.

Each request puts its item on a queue and awaits a future.  One collector task takes the
first item, waits up to ``max_wait_s`` for more (or until ``max_batch``), and runs the
batch function in a single worker thread, so the event loop never blocks on the model and
the model is never called from two threads at once.  While a batch runs, new requests
queue up and form the next batch, so under load batches fill without any waiting.

Examples:
    >>> import asyncio
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> async def demo():
    ...     with ThreadPoolExecutor(1) as pool:
    ...         b = MicroBatcher(lambda xs: [x * 2 for x in xs], executor=pool,
    ...                          max_batch=4, max_wait_s=0.01)
    ...         await b.start()
    ...         out = await asyncio.gather(*(b.submit(i) for i in range(3)))
    ...         await b.stop()
    ...         return out, b.stats.largest_batch
    >>> asyncio.run(demo())
    ([0, 2, 4], 3)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any


class Overloaded(Exception):
    """More items pending than the batcher accepts; the caller should answer 503."""


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    largest_batch: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "items": self.items,
                "largest_batch": self.largest_batch}


class MicroBatcher:
    """Collect submitted items into batches for ``fn(list_of_items) -> list_of_results``.

    ``fn`` must return one result per item, in order; a result that is an exception
    instance is raised to that item's caller only, so one bad image does not fail its
    neighbours.
    """

    def __init__(self, fn: Callable[[list[Any]], Sequence[Any]], *, executor: Executor,
                 max_batch: int = 8, max_wait_s: float = 0.005, max_pending: int = 64) -> None:
        self._fn = fn
        self._executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._collect(), name="ferkit-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(self, item: Any) -> Any:
        """The result for ``item``; raises :class:`Overloaded` when the queue is full."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if self._pending >= self.max_pending:
            raise Overloaded(f"{self._pending} images already waiting")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending += 1
        try:
            await self._queue.put((item, future))
            return await future
        finally:
            self._pending -= 1

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:  # not TimeoutError: distinct on Python 3.10
                    break
            # Callers that timed out or disconnected cancelled their futures: skip them.
            batch = [(item, fut) for item, fut in batch if not fut.done()]
            if batch:
                await self._run(batch, loop)

    async def _run(self, batch: list[tuple[Any, asyncio.Future[Any]]],
                   loop: asyncio.AbstractEventLoop) -> None:
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        try:
            results = await loop.run_in_executor(self._executor, self._fn,
                                                 [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for "
                                   f"{len(batch)} items")
        except Exception as exc:
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
