"""Thread limits for fairskl's parallel units of work (one fit, one study cell) on any backend.

fairskl's loops use :class:`sklearn.utils.parallel.Parallel`, so the joblib backend the user
chooses runs them (see :ref:`cluster`). Each backend limits the threads of its workers itself,
except for torch on Dask:

- **loky** (``n_jobs > 1``, the default backend): joblib starts each worker with
  ``OMP_NUM_THREADS`` (and the MKL / OpenBLAS variables) set to ``cpu_count() // n_jobs``, and torch
  reads them when it is imported in the worker, so ``n_jobs`` workers share the cores. Override
  with ``joblib.parallel_config(inner_max_num_threads=k)``.
- **threading** and ``n_jobs=1``: the parent's torch threads (``torch.set_num_threads``,
  ``OMP_NUM_THREADS``).
- **Dask**: the nanny starts each worker process with ``OMP_NUM_THREADS=1`` (dask's
  ``distributed.nanny.pre-spawn-environ``), however many threads (``--nthreads``) the worker
  was given. :func:`limit_torch_threads`, called at the start of each fit, sets torch's intra-op
  threads to the worker's ``nthreads``: its share of the machine.

Nothing here imports dask or torch.cuda: a process that has not imported ``distributed`` is not
a Dask worker, and CUDA stays uninitialised until a fit moves a network to ``device="cuda"``.
"""

import sys

import torch

__all__ = ["limit_torch_threads"]


def _dask_worker():
    """The Dask worker running the current task, or None (also when dask is not installed)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:  # not imported by this process: not a Dask worker
        return None
    try:
        return distributed.get_worker()
    except ValueError:  # imported (e.g. a Client in this process) but not inside a task
        return None


def limit_torch_threads():
    """Set torch's intra-op threads to the Dask worker's thread count; no-op elsewhere.

    Called at the start of each parallel unit of work (a fold of the λ study, a cell of the
    representation study). On a Dask worker started with ``--nthreads k`` (or a
    ``LocalCluster(threads_per_worker=k)``), torch uses ``k`` threads, so that workers sharing a
    machine do not oversubscribe its cores. Outside Dask it changes nothing: loky workers already
    get ``OMP_NUM_THREADS = cpu_count() // n_jobs`` from joblib.

    Returns
    -------
    n_threads : int or None
        The thread count set, or None outside a Dask worker.
    """
    worker = _dask_worker()
    if worker is None:
        return None
    n_threads = max(1, int(worker.state.nthreads))
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    return n_threads
