"""One run per workdir: an exclusive lock on WORKDIR/.lock for as long as a job writes there.

The lock is an advisory `fcntl.flock` on the file, which the kernel drops when the holding
process exits however it ends (SIGKILL included), so a killed run leaves no stale lock:
the file stays, holding the last owner's description, and the next run takes it over.
Within one process the lock is re-entrant (a comparison's job and the runs inside it).
In a multi-process run process 0 holds it and tells the others whether it got it.
"""
import contextlib
import datetime
import fcntl
import os
import socket

from mirjax.errors import WorkdirError

LOCK_FILE = ".lock"
_held = {}  # realpath -> [open file, depth]


def check_writable(workdir: str):
  """Raises WorkdirError when `workdir` exists and is not a folder."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} is a file, not a folder: choose a folder (new or "
                       "one of an earlier run of this config)")


def require_existing(workdir: str, what: str = "a trained model"):
  """For commands that only read a workdir: raises WorkdirError (creating nothing) when
  `workdir` is not an existing folder."""
  if not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} does not exist (or is not a folder): name the "
                       f"workdir of a finished run that holds {what}")


def _owner(f) -> str:
  f.seek(0)
  text = f.read().strip()
  return text or "another process"


def _acquire(path: str):
  check_writable(path)
  os.makedirs(path, exist_ok=True)
  f = open(os.path.join(path, LOCK_FILE), "a+")
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    owner = _owner(f)
    f.close()
    raise WorkdirError(f"{path} is in use by another run ({owner}); nothing was changed. "
                       "Wait for it to finish, or choose another --workdir") from None
  f.seek(0)
  f.truncate()
  f.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
          f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
  f.flush()
  return f


@contextlib.contextmanager
def lock(workdir: str, primary: bool = True):
  """Holds WORKDIR's lock for the block (creating WORKDIR; one it created and that holds
  nothing but the lock at the end is removed). `primary`: whether this process takes it
  (process 0 of a multi-process run; the others only hear the outcome).

  Raises:
    WorkdirError: another live process holds it, or WORKDIR is a file.
  """
  import jax
  path = os.path.realpath(workdir)
  error = None
  created = not os.path.exists(path)
  if primary and path not in _held:
    try:
      _held[path] = [_acquire(path), 0, created]
    except WorkdirError as e:
      error = e
  if jax.process_count() > 1:  # every process fails together, or none does
    from jax.experimental import multihost_utils
    import numpy as np
    failed = multihost_utils.broadcast_one_to_all(np.int32(error is not None))
    if failed and error is None:
      raise WorkdirError(f"{path} is in use by another run (process 0 could not lock it)")
  if error is not None:
    raise error
  if path in _held:
    _held[path][1] += 1
  try:
    yield path
  finally:
    if path in _held:
      _held[path][1] -= 1
      if _held[path][1] == 0:
        f, _, made_here = _held.pop(path)
        if made_here and os.listdir(path) == [LOCK_FILE]:  # a run that stopped before writing
          os.remove(os.path.join(path, LOCK_FILE))         # anything leaves no workdir behind
          os.rmdir(path)
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()
