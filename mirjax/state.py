"""The training state: everything a run needs to continue, as one pytree."""
from typing import Any

import flax
import jax


@flax.struct.dataclass
class TrainState:
  """step: optimizer steps taken; params: model parameters; model_state: non-trained
  collections (batch-norm statistics); opt_state: the optax state, branch weights
  included; rng: the run's base key (raw uint32[2]); step keys are fold_in(rng, step)."""
  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  rng: jax.Array
