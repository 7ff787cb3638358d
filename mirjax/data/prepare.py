"""Building a TFDS dataset when several runs share one data dir.

Two runs that build the same dataset at once (two workdirs, one data dir) would both
write it and one would fail renaming its `incomplete.*` folder. `prepared` builds under an
exclusive lock on the dataset's folder: the first run builds, the second waits and then
reads what the first built. A build killed part-way leaves an `incomplete.*` folder
behind; the next build, holding the lock, removes it. The lock is an OS file lock
(fcntl.flock), so a killed process releases it with nothing to clean up.
"""
import fcntl
import glob
import os
import shutil

from absl import logging
from tensorflow_datasets.core import constants

LOCK_NAME = ".mirjax-build.lock"


def prepared(make_builder, **kwargs):
  """`make_builder()`'s builder after `download_and_prepare(**kwargs)` under the dataset
  folder's lock; made again when another process finished the build while this one waited
  (a builder reads its info when it is made)."""
  builder = make_builder()
  version_dir = os.fspath(builder.data_dir)
  existed = os.path.isdir(version_dir)
  folder = os.path.dirname(version_dir)  # <data_dir>/<name>/<config>
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, LOCK_NAME), "a+") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      logging.warning("mirjax: another process is building %s; waiting for it", folder)
      print(f"mirjax: another process is building {folder}; waiting for it", flush=True)
      fcntl.flock(lock, fcntl.LOCK_EX)
    for orphan in sorted(glob.glob(os.path.join(folder, constants.INCOMPLETE_PREFIX + "*"))):
      logging.warning("mirjax: removing %s, left by a build that was stopped", orphan)
      shutil.rmtree(orphan, ignore_errors=True)
    if not existed and os.path.isdir(version_dir):  # built by the process we waited for
      builder = make_builder()
    builder.download_and_prepare(**kwargs)
  return builder
