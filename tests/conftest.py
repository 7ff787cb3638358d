"""Test set-up: 8 host CPU devices, so every sharded path runs on a real 8-device mesh."""
import atexit
import os
import shutil
import tempfile

# Must happen before jax is imported anywhere.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent XLA cache for the session and the mirjax processes tests start: a program
# compiled once (the same smoke model in several runs) is not compiled again.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="mirjax-xla-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import pytest  # noqa: E402


def pytest_xdist_auto_num_workers(config):
  """Workers for `-n auto`: one per core, at most 4 (each holds a few GiB: 8 devices, a
  compiled model, a dataset) and at most one per 6 GiB of memory. Much of a test's time is
  single-threaded (XLA compilation, building data), so even two cores are kept busy only by
  two workers."""
  del config
  try:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
  except (ValueError, OSError, AttributeError):
    memory_gib = 12.0
  return max(1, min(os.cpu_count() or 1, 4, int(memory_gib // 6)))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One TFDS data dir per test session, so the smoke dataset is built once."""
  return str(tmp_path_factory.mktemp("tfds"))
