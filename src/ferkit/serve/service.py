"""The object that lives for the app's lifetime: the recognizer and the threads, queues and
budgets every request goes through.

One dedicated thread runs every model call (:class:`~ferkit.serve.scheduler.ModelThread`),
so the event loop stays free and the model is never used from two threads at once; predict
batches (:class:`~ferkit.serve.batcher.MicroBatcher`) and the face detection of
explanations queue in weighted lanes there.  The explanations themselves (backward passes)
run in a thread of their own at lower CPU priority, on a copy of the classifier, so they
cannot starve predictions.  Decoding runs in a small pool of its own, inside the request's
deadline and within a memory budget (:class:`~ferkit.serve.budget.ByteBudget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ferkit.serve.batcher import MicroBatcher, Overloaded
from ferkit.serve.budget import ByteBudget
from ferkit.serve.errors import ApiError
from ferkit.serve.images import decode_image, inspect_image
from ferkit.serve.loading import warm_up_explainer
from ferkit.serve.scheduler import ModelThread
from ferkit.serve.settings import ServeSettings

#: predict batches run per explanation's face detection while both wait for the model thread
PREDICT_WEIGHT = 4
#: how much lower the explain thread's CPU priority is (Linux nice; 10 ~ a tenth of the CPU
#: share of the prediction thread when both compete for a core)
EXPLAIN_NICENESS = 10


def _yield_cpu() -> None:
    """Lower this thread's CPU priority (Linux: per-thread nice; the threads torch starts
    from it inherit it), so explanations use the cores predictions leave free."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere PRIO_PROCESS takes a process id, not a thread's
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                       + EXPLAIN_NICENESS)


class Service:
    """One recognizer served: batching, the model thread, explanations, decoding.

    ``explainer``: a copy of ``recognizer`` with its own classifier
    (:func:`ferkit.serve.loading.explainer_for`), or ``None`` to explain with ``recognizer``.
    Call :meth:`MicroBatcher.start` on ``batcher`` inside the event loop before serving, and
    :meth:`shutdown` after.
    """

    def __init__(self, recognizer: Any, name: str, settings: ServeSettings, *,
                 explainer: Any = None) -> None:
        self.recognizer = recognizer
        # Explanations (backward passes, seconds each) run in a thread of their own on a
        # copy of the classifier: predictions never wait behind them.  Face detection for
        # them runs in the model thread's explain lane.
        self.explainer = explainer if explainer is not None else recognizer
        self.explain_thread = ThreadPoolExecutor(1, thread_name_prefix="ferkit-explain",
                                                 initializer=_yield_cpu)
        if explainer is not None:  # the explain thread's first job, while serving starts
            self.explain_thread.submit(warm_up_explainer, explainer)
        self.name = name
        self.settings = settings
        self.started = time.monotonic()
        self.model_thread = ModelThread({"predict": PREDICT_WEIGHT, "explain": 1})
        # Decoding gets a few threads of its own: bounded CPU use and memory (each thread
        # that decodes keeps its own malloc arena), and never queued behind the model.
        self.decoder = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)),
                                          thread_name_prefix="ferkit-decode")
        self.decode_budget = ByteBudget(settings.max_decode_bytes)
        self.batcher = MicroBatcher(self._predict_batch,
                                    executor=self.model_thread.lane("predict"),
                                    max_batch=settings.max_batch,
                                    max_wait_s=settings.batch_wait_ms / 1000,
                                    max_pending=settings.max_pending)
        self.explain_lane = self.model_thread.lane("explain")
        self.explaining = 0
        self.explain_seconds = 5.0  # running mean of an explanation's duration

    def shutdown(self) -> None:
        self.model_thread.shutdown(wait=True, cancel_futures=True)
        self.explain_thread.shutdown(wait=True, cancel_futures=True)
        self.decoder.shutdown(wait=True, cancel_futures=True)

    def _predict_batch(self, images: list[np.ndarray]) -> list[Any]:
        try:
            return list(self.recognizer(images, color="rgb"))
        except Exception:
            if len(images) == 1:
                raise
        # One bad image must not fail the others: retry one by one, errors per image.
        results: list[Any] = []
        for image in images:
            try:
                results.append(self.recognizer([image], color="rgb")[0])
            except Exception as exc:
                results.append(exc)
        return results

    async def explain_detect(self, image: np.ndarray) -> list[Any]:
        """Faces found and aligned for an explanation: the model thread's explain lane,
        one turn per ``PREDICT_WEIGHT`` predict batches."""
        return await asyncio.get_running_loop().run_in_executor(
            self.explain_lane, functools.partial(self.recognizer.detect_and_align, image,
                                                  color="rgb"))

    async def explain_faces(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(explainer)`` in the explain thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self.explain_thread, fn, self.explainer)

    async def predict(self, image: np.ndarray) -> Any:
        try:
            return await self.batcher.submit(image)
        except Overloaded:
            raise ApiError(503, "overloaded", "too many requests are waiting for the "
                                              "model; retry shortly") from None

    async def within_deadline(self, awaitable: Any) -> Any:
        """``awaitable``'s result, or 504 after ``request_timeout_s`` (decode + model)."""
        try:
            return await asyncio.wait_for(awaitable, self.settings.request_timeout_s)
        except asyncio.TimeoutError:  # not TimeoutError: distinct on Python 3.10
            raise ApiError(504, "timeout", f"the image was not decoded and run through the "
                                           f"model within {self.settings.request_timeout_s:g}"
                                           f" s") from None

    @contextlib.asynccontextmanager
    async def explain_slot(self) -> AsyncIterator[None]:
        """Admit one explanation, or 503 with a ``Retry-After`` when the lane is full."""
        if self.explaining >= self.settings.max_pending_explain:
            raise ApiError(503, "overloaded",
                           f"{self.explaining} explanations are already queued or running "
                           f"(the limit is {self.settings.max_pending_explain}); retry later",
                           retry_after=max(1, math.ceil(self.explain_seconds)))
        self.explaining += 1
        start = time.monotonic()
        try:
            yield
        finally:
            self.explaining -= 1
            self.explain_seconds = 0.7 * self.explain_seconds + 0.3 * (time.monotonic() - start)

    @contextlib.asynccontextmanager
    async def decoded(self, data: bytes) -> AsyncIterator[np.ndarray]:
        """The upload as an RGB array, decoded within the memory budget.

        The header is read first; the decoding's peak memory (from size and bit depth) is
        reserved before a pixel is decoded and given back once the request is answered and
        the decoding thread has finished (it cannot be interrupted), so decoded images never
        take more than ``max_decode_bytes`` together.
        """
        loop = asyncio.get_running_loop()
        limits = {"max_bytes": self.settings.max_upload_bytes,
                  "max_pixels": self.settings.max_pixels}
        header = await loop.run_in_executor(self.decoder,
                                            functools.partial(inspect_image, data, **limits))
        reserved = await self.decode_budget.take(header.decode_bytes)
        holders = 2  # this request and the decoding job

        def let_go() -> None:
            nonlocal holders
            holders -= 1
            if holders == 0:
                self.decode_budget.give_back(reserved)

        def job_done(_: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                loop.call_soon_threadsafe(let_go)

        job = self.decoder.submit(decode_image, data, header=header, **limits)
        job.add_done_callback(job_done)
        try:
            yield await asyncio.wrap_future(job)
        finally:
            let_go()
