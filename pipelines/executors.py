"""Executors: run one task per shard, in this process (`local`) or on Ray (`ray`), behind one interface.

`run(fn, shared, items, on_result)` calls `fn(shared, item)` for every item (`shared` is sent to the
workers once) and reports each outcome to `on_result(item, result, error)` as it arrives (in the driver).
An executor only supplies one pass over the items; `retry_once` runs a task that raised once more, after
all the others, for every executor alike, so a shard only fails if it fails twice. Ray also runs a
bounded number of tasks at once (back-pressure through `ray.wait`) and retries tasks whose worker died
(`max_retries`). This module is the only one that imports Ray.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

OnResult = Callable[[Any, Any, str | None], None]


def describe(e: BaseException) -> str:
    """One line: the exception type and its first line (Ray wraps task errors; unwrap them)."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        e = cause
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


Report = Callable[[Any, Any, BaseException | None], None]  # one pass's outcome: (item, result, exception)


def retry_once(one_pass: Callable[[Sequence[Any], Report], None], items: Sequence[Any], on_result: OnResult) -> None:
    """Every executor's retry rule, written once: `one_pass(items, report)` runs each item once and reports
    it; the items that raised run once more, after all the others, and only that second outcome reaches
    `on_result` (an error as `describe`'s one line). So an item fails only if it fails twice."""
    failed: list[Any] = []

    def first(item: Any, result: Any, error: BaseException | None) -> None:
        if error is None:
            on_result(item, result, None)
            return
        failed.append(item)
        log.warning("task %s failed, will retry at the end: %s", item, describe(error),
                    exc_info=error if log.isEnabledFor(logging.DEBUG) else None)

    def second(item: Any, result: Any, error: BaseException | None) -> None:
        on_result(item, result, None if error is None else describe(error))

    one_pass(items, first)
    if failed:
        one_pass(failed, second)


class Executor(Protocol):
    def run(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], on_result: OnResult) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs tasks one after another in this process (debugging, tests, tiny jobs)."""

    workers = 1

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], on_result: OnResult) -> None:
        def one_pass(items: Sequence[Any], report: Report) -> None:
            for item in items:
                try:
                    result = fn(shared, item)
                except Exception as e:
                    report(item, None, e)
                    continue
                report(item, result, None)

        retry_once(one_pass, items, on_result)

    def close(self) -> None:
        pass


FORWARDED_ENV = ("TEXTINFUSE_OCR_DEVICE", "TEXTINFUSE_PLUGINS")  # settings a job's workers must share with its driver


class RayExecutor:
    """Ray tasks, one per item. Starts a local Ray with `workers` CPUs unless Ray is already initialised
    or an address is given (`address` or RAY_ADDRESS); shuts down only a Ray it started itself."""

    def __init__(self, workers: int | None = None, address: str | None = None, max_retries: int = 3,
                 in_flight_per_cpu: int = 2):
        try:
            import ray
        except ImportError as e:  # pragma: no cover - ray is a core dependency
            raise ImportError("the ray executor needs ray: pip install ray (or use --executor local)") from e
        self._ray = ray
        self.owned = False
        address = address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            t = time.perf_counter()
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}  # a cluster's workers get them too
            extra = {"runtime_env": {"env_vars": env}} if env else {}
            if address:
                ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING, **extra)
            else:
                ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=True,
                         logging_level=logging.WARNING, configure_logging=True, **extra)
                self.owned = True
            log.info("Ray ready in %.1f s (%s)", time.perf_counter() - t, address or "local")
        self.workers = int(ray.cluster_resources().get("CPU", 1)) if workers is None or address else workers
        self.max_in_flight = max(1, in_flight_per_cpu * self.workers)
        self.max_retries = max_retries

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any], on_result: OnResult) -> None:
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=self.max_retries)(fn)
        shared_ref = ray.put(shared)  # once, for both passes

        def one_pass(items: Sequence[Any], report: Report) -> None:
            pending = list(items)
            running: dict[Any, Any] = {}
            # Ctrl-C propagates as is. No ray.cancel here: force-cancelling a task whose reply is already on
            # its way trips a CHECK in Ray 2.60's task manager and kills the driver with exit 1. Ray itself
            # kills a job's workers when its driver exits, and a half-written shard is only a temp file.
            while pending or running:
                while pending and len(running) < self.max_in_flight:
                    item = pending.pop(0)
                    running[task.remote(shared_ref, item)] = item
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    item = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as e:  # a task that raised, or died more than max_retries times
                        report(item, None, e)
                        continue
                    report(item, result, None)

        retry_once(one_pass, items, on_result)

    def close(self) -> None:
        if self.owned and self._ray.is_initialized():
            self._ray.shutdown()
            self.owned = False


def make_executor(kind: str, workers: int | None = None, address: str | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(workers=workers, address=address)
    raise ValueError(f"executor {kind!r}: use 'ray' or 'local'")
