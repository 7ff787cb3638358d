"""mirjax: JAX/Flax research code for music information retrieval.

Importing mirjax may set one XLA CPU option before JAX starts its backend:
``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution``, which leaves
convolutions to XLA's own CPU emitter instead of YNNPACK. On the 2-core VM mirjax is
measured on (jaxlib 0.10.2) it made the flagship's train step 1.5x faster
(`python -m mirjax.bench.train`). XLA aborts the program on a flag it does not know, and
experimental flags get renamed, so the option is set only where the installed jaxlib is a
release known to accept it (`YNN_JAXLIB`), only when `XLA_FLAGS` does not name it already,
and never with ``MIRJAX_XLA_CPU_DEFAULTS=0`` in the environment. Re-measure whenever
jaxlib changes.
"""
import os as _os

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
YNN_JAXLIB = ("0.10.",)  # jaxlib release prefixes known to accept YNN_FLAG (0.10.2 measured)


def xla_flags_with_cpu_defaults(xla_flags: str, jaxlib_version: str | None, opt_out: str | None) -> str:
  """`xla_flags` with mirjax's CPU convolution choice added where it is safe (see above)."""
  if (opt_out or "").strip().lower() in ("0", "false", "no", "off"):
    return xla_flags
  if YNN_FLAG in xla_flags or not jaxlib_version or not jaxlib_version.startswith(YNN_JAXLIB):
    return xla_flags
  return f"{xla_flags} {YNN_FLAG}=-individual_convolution".strip()


def _jaxlib_version():
  from importlib import metadata
  try:
    return metadata.version("jaxlib")
  except metadata.PackageNotFoundError:
    return None


_os.environ["XLA_FLAGS"] = xla_flags_with_cpu_defaults(
    _os.environ.get("XLA_FLAGS", ""), _jaxlib_version(), _os.environ.get("MIRJAX_XLA_CPU_DEFAULTS"))
if not _os.environ["XLA_FLAGS"]:
  del _os.environ["XLA_FLAGS"]
