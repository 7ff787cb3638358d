"""An ordered process-pool map with a progress bar, for parsing and rendering pieces."""
import concurrent.futures
import contextlib
import multiprocessing
import os

_chosen = [0]  # the workers `using` set for the builds inside it; 0: every core


def cores() -> int:
  """The cores this process may run on (its CPU affinity, which a batch scheduler sets)."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # not Linux
    return max(1, os.cpu_count() or 1)


def default_workers() -> int:
  """Worker processes a dataset build uses: what `using` set (config.data.build_workers),
  else one per core this process may use."""
  return _chosen[0] if _chosen[0] > 0 else cores()


@contextlib.contextmanager
def using(workers: int):
  """Within it, builds that are not told otherwise use `workers` processes (0: one per core)."""
  if workers < 0:
    raise ValueError(f"build workers {workers}: give a count, or 0 for one per core")
  before, _chosen[0] = _chosen[0], int(workers)
  try:
    yield
  finally:
    _chosen[0] = before


def imap(fn, items, workers: int, desc: str, unit: str = "piece"):
  """Yield `fn(item)` for each item, in order, from `workers` worker processes.

  `fn` must be a module-level function. `workers` 0 means `default_workers()`. With
  `workers == 1` or fewer than 8 items it
  runs in this process. A tqdm bar labelled `desc` counts the items.

  Workers come from a fork server, never from a fork of this process: by the time a
  dataset is built JAX's runtime threads are running, and forking a threaded process
  can deadlock the child. As with any process pool, a script that builds a dataset at
  import time needs an ``if __name__ == "__main__":`` guard.
  """
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  items = list(items)
  workers = workers or default_workers()  # 0: the default
  bar = dict(total=len(items), desc=desc, unit=unit, leave=False)
  if workers <= 1 or len(items) < 8:
    yield from tqdm(map(fn, items), **bar)
    return
  ctx = multiprocessing.get_context("forkserver")
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
    yield from tqdm(ex.map(fn, items, chunksize=2), **bar)
