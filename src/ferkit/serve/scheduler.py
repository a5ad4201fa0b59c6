"""One model thread shared by weighted lanes, so heavy work cannot starve light work.

The model runs in a single thread (it is not thread-safe, and one thread uses the cores
best).  Predict batches and explanation steps both need it, but an explanation of a
crowded photo takes many times longer than a predict batch.  A plain FIFO thread pool
lets a few explanations hold every prediction behind them until it times out.

:class:`ModelThread` keeps one queue per *lane* and picks the next job by weight: with
weights ``{"predict": 4, "explain": 1}``, while both lanes wait, four predict jobs run for
each explain job; a lane alone gets every turn.  Each lane is a
:class:`concurrent.futures.Executor`, so ``loop.run_in_executor(lane, fn)`` works as with
any pool.  Callers split long work into steps (one job each) so other lanes get turns.

Examples:
    >>> mt = ModelThread({"fast": 2, "slow": 1})
    >>> fast, slow = mt.lane("fast"), mt.lane("slow")
    >>> [f.result() for f in [fast.submit(pow, 2, 3), slow.submit(abs, -1)]]
    [8, 1]
    >>> mt.shutdown()
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from typing import Any


class ModelThread:
    """A single worker thread serving several weighted job queues (lanes)."""

    def __init__(self, weights: Mapping[str, int], *, name: str = "ferkit-model") -> None:
        if not weights or any(w < 1 for w in weights.values()):
            raise ValueError(f"lane weights must be at least 1, got {dict(weights)}")
        self.weights = dict(weights)
        self._queues: dict[str, deque[tuple[Future[Any], Callable[[], Any]]]] = {
            lane: deque() for lane in weights}
        self._turn = next(iter(weights))
        self._turns_left = self.weights[self._turn]
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"{name}_0", daemon=True)
        self._thread.start()

    def lane(self, name: str) -> Executor:
        """An executor whose jobs run in this thread, in lane ``name``."""
        if name not in self._queues:
            raise KeyError(f"no lane {name!r}; lanes: {', '.join(self._queues)}")
        return _Lane(self, name)

    def waiting(self, lane: str) -> int:
        """Jobs queued in ``lane`` (not counting one that is running)."""
        with self._cv:
            return len(self._queues[lane])

    def submit(self, lane: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the model thread is shut down")
            self._queues[lane].append((future, lambda: fn(*args, **kwargs)))
            self._cv.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = True) -> None:
        with self._cv:
            self._closed = True
            if cancel_futures:
                for queue in self._queues.values():
                    while queue:
                        queue.popleft()[0].cancel()
            self._cv.notify()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _next_job(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        """Weighted round robin over the lanes that have work (call with the lock held)."""
        lanes = list(self._queues)
        for _ in range(2 * len(lanes)):
            queue = self._queues[self._turn]
            if queue and self._turns_left > 0:
                self._turns_left -= 1
                return queue.popleft()
            index = (lanes.index(self._turn) + 1) % len(lanes)
            self._turn = lanes[index]
            self._turns_left = self.weights[self._turn]
        return None

    def _work(self) -> None:
        while True:
            with self._cv:
                job = self._next_job()
                while job is None:
                    if self._closed:
                        return
                    self._cv.wait()
                    job = self._next_job()
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up (timeout, disconnect) before it started
            try:
                result = call()
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)
            else:
                future.set_result(result)


class _Lane(Executor):
    def __init__(self, owner: ModelThread, name: str) -> None:
        self._owner = owner
        self._name = name

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._owner.submit(self._name, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Lanes share the thread: shut down the :class:`ModelThread` instead."""
