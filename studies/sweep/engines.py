"""Where the jobs run: local processes (the standard library's ProcessPoolExecutor) or
a Dask cluster (dask.distributed) — existing engines, not a home-made scheduler.

Both take the same jobs and call ``on_row`` with each finished row as it comes (in
completion order; the table puts them back in job order). A job is self-contained and
seeded, so the engine changes how fast the table fills, never what is in it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any
from urllib.parse import urlsplit

from studies.sweep.job import Job, run_job

OnRow = Callable[[dict[str, Any]], None]


class EngineError(ValueError):
    """A bad engine address (one line)."""


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ignore_sigint() -> None:
    # Ctrl-C is the parent's to handle (it stops the pool); workers just end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_local(jobs: Sequence[Job], workers: int, on_row: OnRow) -> None:
    """On ``workers`` local processes (1: in this process, no pool)."""
    if workers <= 1:
        for job in jobs:
            on_row(run_job(job))
        return
    # forkserver: workers start from a clean process, not a fork of one with threads
    # (the progress bar's) running.
    ctx = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint)
    try:
        pending: set[Future[dict[str, Any]]] = {pool.submit(run_job, j) for j in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                on_row(fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_HOST_PORT_SCHEMES = ("tcp", "tls", "ws", "wss")  # Dask connects to HOST:PORT


def parse_dask_address(address: str) -> tuple[str, int | None]:
    """``local:N`` → ("local", N); ``tcp://host:port`` (or any scheduler address) → (address,
    None)."""
    if address.startswith("local:"):
        text = address.removeprefix("local:")
        if not text.isdigit() or not 1 <= int(text) <= 256:
            raise EngineError(f"--dask {address}: local:N needs N workers within 1..256")
        return "local", int(text)
    if "://" not in address:
        raise EngineError(
            f"--dask {address}: give a scheduler address (tcp://HOST:8786) or local:N"
        )
    scheme = address.partition("://")[0]
    if scheme in _HOST_PORT_SCHEMES:  # Dask connects to HOST:PORT, the port required
        parts = urlsplit(address)
        try:
            port = parts.port
        except ValueError:  # not a number, or beyond 65535
            port = None
        if not parts.hostname or not port or parts.path.strip("/") or parts.query:
            raise EngineError(
                f"--dask {address}: a scheduler address is {scheme}://HOST:PORT"
                f" (e.g. {scheme}://127.0.0.1:8786)"
            )
    return address, None


WORKER_WAIT_S = 60.0  # a scheduler with no worker: how long to wait for one


def run_dask(
    jobs: Sequence[Job],
    address: str,
    on_row: OnRow,
    *,
    processes: bool = True,
    worker_wait_s: float = WORKER_WAIT_S,
    on_wait: Callable[[str], None] | None = None,
) -> None:
    """On a Dask cluster: ``tcp://scheduler:8786``, or ``local:N`` for a LocalCluster of N
    single-threaded workers (``processes=False``: threads in this process, for tests). A
    scheduler with no worker is waited for at most ``worker_wait_s`` — said through
    ``on_wait`` — then given up on: a sweep never sits silent."""
    from dask.distributed import Client, LocalCluster, as_completed

    where, n_workers = parse_dask_address(address)
    cluster: LocalCluster | None = None
    if n_workers is not None:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        try:
            client = Client(where, timeout="10s")
        except OSError as exc:
            raise EngineError(f"--dask {address}: no scheduler there ({exc})") from None
    try:
        if n_workers is None and not client.scheduler_info().get("workers"):
            if on_wait is not None:
                on_wait(
                    f"the Dask scheduler at {where} has no workers yet: waiting up to"
                    f" {worker_wait_s:g} s for one (`dask worker {where}`)"
                )
            try:
                client.wait_for_workers(1, timeout=worker_wait_s)
            except TimeoutError:
                raise EngineError(
                    f"--dask {address}: no worker joined the scheduler in {worker_wait_s:g} s"
                    f" (--dask-wait-s) — start one: `dask worker {where}`"
                ) from None
        futures = client.map(run_job, list(jobs), key=[f"sweep-{j.run_id}" for j in jobs])
        for fut in as_completed(futures):
            on_row(fut.result())
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
