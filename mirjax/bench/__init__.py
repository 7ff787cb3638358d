"""Benchmarks: `python -m mirjax.bench.<name> [--quick]`, each printing ratios against the
baseline a user would otherwise pick."""
import os


def one_host_device_per_core(environ=os.environ):
  """On a CPU, one host device per core this process may run on, so a benchmark spreads its
  batch over every core as a data-parallel job spreads it over accelerators; unless XLA_FLAGS
  sets a device count already. Call it before JAX starts (before `import jax`)."""
  flags = environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}".strip()
