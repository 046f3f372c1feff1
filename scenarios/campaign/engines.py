"""Where a campaign's tasks run: this process, local worker processes, or a Dask cluster.

Each engine only submits a task and says which have finished; ``ordered`` and ``unordered``
keep at most ``2 x slots`` tasks in flight (the workers never wait for the client, and the
client never holds more than that many results), and ``ordered`` hands results back in the
inputs' order, so what is merged from them is the same whichever worker finished first.

Why Dask for the cluster and not Ray: measured on this workload and machine (docs/campaigns.md,
``bench/campaign.py engines``): a two-worker local cluster is up in ~2.4 s against ~9 s, the
package is 45 MB against 260 MB; Ray's lower cost per task (~1 ms against ~3 ms) is lost in a
task that replays a log for seconds to minutes.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from scenarios.campaign.inputs import CampaignError

T = TypeVar("T")
R = TypeVar("R")
#: How long the client waits to reach a cluster's scheduler and find a worker there.
CONNECT_TIMEOUT_S = 30.0


class Engine(Protocol):
    """Runs tasks somewhere. ``submit`` returns a handle; ``first_done`` blocks until at least
    one of the handles has finished and returns those that have."""

    name: str

    def slots(self) -> int: ...

    def submit(self, fn: Callable[[Any], Any], item: Any) -> Any: ...

    def first_done(self, handles: set[Any]) -> set[Any]: ...

    def result(self, handle: Any) -> Any: ...

    def close(self) -> None: ...


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


class SerialEngine:
    """Every task in this process, at once when submitted: the serial run itself."""

    name = "serial"

    def slots(self) -> int:
        return 1

    def submit(self, fn: Callable[[Any], Any], item: Any) -> cf.Future[Any]:
        done: cf.Future[Any] = cf.Future()
        done.set_result(fn(item))  # an exception propagates here, as a serial loop's would
        return done

    def first_done(self, handles: set[Any]) -> set[Any]:
        return set(handles)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        pass


class LocalEngine:
    """Worker processes on this machine, started by ``spawn``: a fresh interpreter each,
    nothing inherited from the client's threads or open files."""

    name = "local"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise CampaignError("--workers must be at least 1")
        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(max_workers=workers,
                                            mp_context=multiprocessing.get_context("spawn"))

    def slots(self) -> int:
        return self.workers

    def submit(self, fn: Callable[[Any], Any], item: Any) -> cf.Future[Any]:
        return self._pool.submit(fn, item)

    def first_done(self, handles: set[Any]) -> set[Any]:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        return set(done)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskEngine:
    """The workers of a running Dask cluster (``dask scheduler``, ``dask worker ADDRESS
    --nthreads 1``). They must import the same l4mon and see the inputs at the same paths;
    the results come back to this client, which alone writes them."""

    name = "dask"

    def __init__(self, address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise CampaignError("--cluster needs Dask's distributed package: pip install -c "
                                "constraints.txt -e '.[cluster]'") from None
        try:
            self._client = Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise CampaignError(f"cannot reach the Dask scheduler at {address}: "
                                f"{error}") from None
        try:
            self._client.wait_for_workers(1, timeout=timeout_s)
        except TimeoutError:
            self._client.close()
            raise CampaignError(f"the Dask scheduler at {address} has no worker (waited "
                                f"{timeout_s:g} s): start some with dask worker {address} "
                                "--nthreads 1") from None

        from distributed import as_completed

        # Finished futures queue up here as they finish; this client is not the process's
        # default one (another campaign or a test may hold that), so its loop is named.
        self._finished = as_completed(loop=self._client.loop)

    def slots(self) -> int:
        workers = self._client.scheduler_info(n_workers=-1)["workers"].values()
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers))

    def submit(self, fn: Callable[[Any], Any], item: Any) -> Any:
        # pure=False: two inputs are never the same task, and hashing a task's arguments to
        # find out would cost more than it could save.
        future = self._client.submit(fn, item, pure=False)
        self._finished.add(future)
        return future

    def first_done(self, handles: set[Any]) -> set[Any]:
        return set(self._finished.next_batch(block=True)) & handles

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        self._client.close()


def engine_for(*, workers: int | None, cluster: str | None, tasks: int) -> Engine:
    """The cluster when given its address; else ``workers`` local processes (default: this
    machine's CPUs), never more than there are tasks, and this process alone for one."""
    if cluster is not None:
        if workers is not None:
            raise CampaignError("--workers counts this machine's processes; a cluster has its "
                                "own (dask worker --nworkers): give one of them")
        return DaskEngine(cluster)
    if workers is not None and workers < 1:
        raise CampaignError("--workers must be at least 1")
    count = min(workers or cpu_count(), max(tasks, 1))
    return SerialEngine() if count == 1 else LocalEngine(count)


def unordered(engine: Engine, fn: Callable[[T], R], items: Sequence[T]
              ) -> Iterator[tuple[int, R]]:
    """(index, result) as tasks finish."""
    yield from _scheduled(engine, fn, items, in_order=False)


def ordered(engine: Engine, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """Results in the inputs' order, as ``map`` gives them. A task is only started within
    the window after the oldest result not yet handed back, so a slow first input holds back
    at most a window of finished ones."""
    for _, result in _scheduled(engine, fn, items, in_order=True):
        yield result


def _scheduled(engine: Engine, fn: Callable[[T], R], items: Sequence[T], *, in_order: bool
               ) -> Iterator[tuple[int, R]]:
    window = 2 * engine.slots()
    running: dict[Any, int] = {}
    finished: dict[int, R] = {}
    given = 0  # the next index to submit
    handed = 0  # the next index to hand back, in order
    while handed < len(items):
        limit = min(len(items), handed + window) if in_order else len(items)
        while given < limit and len(running) < window:
            running[engine.submit(fn, items[given])] = given
            given += 1
        if running:
            for handle in engine.first_done(set(running)):
                finished[running.pop(handle)] = engine.result(handle)
        if in_order:
            while handed in finished:
                yield handed, finished.pop(handed)
                handed += 1
        else:
            for index in sorted(finished):
                yield index, finished.pop(index)
                handed += 1


def parallel_map(*, workers: int | None, cluster: str | None
                 ) -> Callable[[Callable[[T], R], Sequence[T]], Iterator[R]]:
    """A ``map`` that runs its calls on the engine ``engine_for`` picks once it knows how many
    there are, results in order (the report's ``map_logs``); the engine closes with it."""

    def mapped(fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        engine = engine_for(workers=workers, cluster=cluster, tasks=len(items))
        try:
            yield from ordered(engine, fn, items)
        finally:
            engine.close()

    return mapped
