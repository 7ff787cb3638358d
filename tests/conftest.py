"""Test set-up: 8 host CPU devices, so every sharded path runs on a real 8-device mesh."""
import os

# Must happen before jax is imported anywhere.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One TFDS data dir per test session, so the smoke dataset is built once."""
  return str(tmp_path_factory.mktemp("tfds"))
