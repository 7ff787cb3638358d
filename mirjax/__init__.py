"""mirjax: JAX/Flax research code for music information retrieval.

Importing mirjax sets one XLA CPU option before JAX starts its backend (unless `XLA_FLAGS`
already names it): ``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution``, which
leaves convolutions to XLA's own CPU emitter instead of YNNPACK. On the 2-core VM mirjax is
measured on (jaxlib 0.10.2) it made the flagship's train step 1.5x faster
(`python -m mirjax.bench.train`). The option only touches the CPU backend; set the flag
yourself in `XLA_FLAGS` to choose otherwise, and re-measure whenever jaxlib changes.
"""
import os as _os

_YNN = "--xla_cpu_experimental_ynn_fusion_type"
if _YNN not in _os.environ.get("XLA_FLAGS", ""):
  _os.environ["XLA_FLAGS"] = f"{_os.environ.get('XLA_FLAGS', '')} {_YNN}=-individual_convolution".strip()
