"""What every task shares: which branches the final prediction comes from, and masked means."""
import jax.numpy as jnp
import numpy as np

from mirjax.errors import ConfigError

JOINT = "joint"  # a multi-view model's branch on the concatenated embedding


def prediction_branches(branches, predict_from=()) -> tuple:
  """The branches whose scores, averaged, are the model's prediction: `predict_from` if
  given, else the joint branch if there is one, else every branch (late fusion)."""
  if predict_from:
    unknown = set(predict_from) - set(branches)
    if unknown:
      raise ConfigError(f"task.predict_from names {sorted(unknown)}, not branches of {list(branches)}")
    return tuple(predict_from)
  return (JOINT,) if JOINT in branches else tuple(branches)


def final_scores(scores: dict, use) -> np.ndarray:
  """Mean of the scores of the branches `use` (host arrays)."""
  return np.mean([np.asarray(scores[b]) for b in use], axis=0)


def masked_mean(per_example, mask=None):
  """Mean over examples, counting only those where `mask` is true (padding of eval batches)."""
  if mask is None:
    return jnp.mean(per_example)
  m = mask.astype(per_example.dtype)
  return jnp.sum(per_example * m) / jnp.maximum(jnp.sum(m), 1.0)
