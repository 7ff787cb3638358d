"""Branch-combining transformations: per-branch gradients in, one gradient out.

Every multi-branch model (one branch for a plain tagger, five for a multi-view net,
one per worker for multi-task pre-training) hands the optimizer a gradient pytree
whose leaves carry a leading branch axis: g[k] = d loss_k / d params. A combiner is
an `optax.experimental.aggregating.Aggregator` that contracts that axis with weights
held in its state, so the weights are checkpointed with the optimizer, visible as
metrics, and can be reset from outside (e.g. by a validation hook).
"""
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from optax.experimental import aggregating


class BranchWeightsState(NamedTuple):
  """weights: (n_branches,) float32, the current weight of each branch loss."""
  weights: jax.Array


def weighted_sum(branch_grads, weights):
  """sum_k w_k g_k over the leading branch axis of every leaf."""
  return jax.tree.map(lambda g: jnp.tensordot(weights.astype(g.dtype), g, axes=1), branch_grads)


def static_weights(weights: Sequence[float]) -> aggregating.Aggregator:
  """Fixed branch weights; all ones is the plain summed-loss gradient."""
  w0 = jnp.asarray(weights, jnp.float32)

  def init(params):
    del params
    return BranchWeightsState(weights=w0)

  def update(branch_grads, state, params=None, **extra_args):
    del params, extra_args
    n = jax.tree.leaves(branch_grads)[0].shape[0]
    if n != w0.shape[0]:
      raise ValueError(f"{w0.shape[0]} branch weights for {n} branches")
    return weighted_sum(branch_grads, state.weights), state

  return aggregating.Aggregator(init, update)


def build(cfg, branches: Sequence[str]) -> aggregating.Aggregator:
  """cfg.name: 'sum' (all weights 1) or 'static' (cfg.weights: {branch: weight})."""
  if cfg.name == "sum":
    return static_weights([1.0] * len(branches))
  if cfg.name == "static":
    missing = set(branches) - set(cfg.weights)
    if missing:
      raise ValueError(f"optim.combine.weights lacks branches {sorted(missing)}; it needs one "
                       f"weight for each of {list(branches)}")
    return static_weights([float(cfg.weights[b]) for b in branches])
  raise ValueError(f"unknown optim.combine.name {cfg.name!r}; choose 'sum' or 'static'")


def branch_weights(opt_state):
  """The (n_branches,) weights inside an optimizer state built by `optim.build`."""
  found = [s.weights for s in jax.tree.leaves(
      opt_state, is_leaf=lambda x: isinstance(x, BranchWeightsState)) if isinstance(s, BranchWeightsState)]
  if len(found) != 1:
    raise ValueError(f"expected one BranchWeightsState in the optimizer state, found {len(found)}")
  return found[0]
