"""The Dask cluster of the ``dask`` engine: its client, and collecting what its tasks give.

:func:`cluster_client` opens a ``distributed.Client`` (a local cluster started for the job, or a
scheduler's address); :func:`gather` turns the cluster's own failures into one
:class:`~geo_crime.core.errors.DataError`; :func:`tree_sum` adds the results of many tasks in a
tree on the cluster. Used by :mod:`geo_crime.cube.dask_incidents` (the incidents held on the
cluster) and :mod:`geo_crime.cube.dask` (their cube). Needs ``pip install geo_crime[dask]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from geo_crime.core.errors import ConfigError, DataError


@dataclass
class ClusterOptions:
    """Where a run's Dask work goes (:func:`cluster_client`'s arguments).

    Attributes
    ----------
    scheduler
        A scheduler address (``tcp://host:8786``) or ``"local"``.
    workers
        Worker processes of a local cluster.
    worker_memory
        Memory limit of each local worker (``"4GB"``).
    """

    scheduler: str = "local"
    workers: int | None = None
    worker_memory: str | None = None


def require_dask() -> None:
    """One clear error when the optional extra (Dask, ``distributed``) is not installed."""
    try:  # imported here: Dask is optional (the ``dask`` extra), checked before any use
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"the dask engine needs the optional extra: pip install 'geo_crime[dask]' ({exc})"
        ) from None


@contextmanager
def cluster_client(
    scheduler: str | None = "local",
    workers: int | None = None,
    worker_memory: str | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client``: to the scheduler at ``scheduler``, or on a local cluster.

    Parameters
    ----------
    scheduler
        A scheduler address (``tcp://host:8786``) or ``"local"``/``None`` for a
        ``LocalCluster`` started here and closed on exit.
    workers
        Worker processes of the local cluster (default: one per core, at most 4).
    worker_memory
        Memory limit of each local worker (``"4GB"``; default: Dask's, the machine's memory
        shared among the workers). A worker spills what it holds to its local disk past 60% of
        it and is restarted past 95%.
    """
    require_dask()
    from distributed import Client, LocalCluster  # optional heavy dependency (dask extra)

    if scheduler in (None, "", "local"):
        n = int(workers or min(4, os.cpu_count() or 1))
        if n < 1:
            raise ConfigError(f"--workers must be at least 1, got {n}")
        limit = "auto" if worker_memory in (None, "") else _memory_size(worker_memory)
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit=limit,
        )
        with (
            cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    if workers is not None or worker_memory is not None:
        raise ConfigError(
            "--workers and --worker-memory apply to a local cluster only (--scheduler local)"
        )
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    with client:
        yield client


def _memory_size(text: str) -> int:
    """Bytes of a size such as ``4GB`` or ``512MiB`` (one clear error otherwise)."""
    from dask.utils import parse_bytes  # optional heavy dependency (dask extra)

    try:
        size = int(parse_bytes(text))
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise ConfigError(f"--worker-memory: {text!r} is not a memory size (use e.g. 4GB)")
    return size


def tree_sum(client: Any, layer: list[Any], combine: Any) -> Any:
    """Combine futures pairwise on the cluster until one is left; its future."""
    while len(layer) > 1:
        nxt = [client.submit(combine, layer[i], layer[i + 1]) for i in range(0, len(layer) - 1, 2)]
        if len(layer) % 2:
            nxt.append(layer[-1])
        layer = nxt
    return layer[0]


def gather(client: Any, futures: Any) -> Any:
    """``client.gather`` with the cluster's own failures turned into one clear error."""
    # optional heavy dependency (dask extra)
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    try:
        return client.gather(futures)
    except KilledWorker as exc:
        raise DataError(
            f"the Dask cluster lost the workers running {exc.task!r} too many times; "
            "no cube was built (see the worker logs)"
        ) from exc
    except FutureCancelledError as exc:
        raise DataError(f"the Dask job was cancelled ({exc}); no cube was built") from exc
    except (OSError, TimeoutError) as exc:
        raise DataError(f"the Dask cluster failed ({exc}); no cube was built") from exc
