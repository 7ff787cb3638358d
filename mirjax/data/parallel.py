"""An ordered process-pool map with a progress bar, for parsing and rendering pieces."""
import concurrent.futures
import multiprocessing
import os


def default_workers() -> int:
  """Worker processes: 2 (parsing scales to 2 cores), or 1 on a one-core machine."""
  return max(1, min(2, os.cpu_count() or 1))


def imap(fn, items, workers: int, desc: str, unit: str = "piece"):
  """Yield `fn(item)` for each item, in order, from `workers` worker processes.

  `fn` must be a module-level function. With `workers <= 1` or fewer than 8 items it
  runs in this process. A tqdm bar labelled `desc` counts the items.

  Workers come from a fork server, never from a fork of this process: by the time a
  dataset is built JAX's runtime threads are running, and forking a threaded process
  can deadlock the child. As with any process pool, a script that builds a dataset at
  import time needs an ``if __name__ == "__main__":`` guard.
  """
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  items = list(items)
  bar = dict(total=len(items), desc=desc, unit=unit, leave=False)
  if workers <= 1 or len(items) < 8:
    yield from tqdm(map(fn, items), **bar)
    return
  ctx = multiprocessing.get_context("forkserver")
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
    yield from tqdm(ex.map(fn, items, chunksize=2), **bar)
