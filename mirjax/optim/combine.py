"""Branch-combining transformations: per-branch gradients in, one gradient out.

Every multi-branch model (one branch for a plain tagger, five for a multi-view net,
one per worker for multi-task pre-training) hands the optimizer a gradient pytree
whose leaves carry a leading branch axis: g[k] = d loss_k / d params. A combiner is
an `optax.experimental.aggregating.Aggregator` that contracts that axis with weights
held in its state, so the weights are checkpointed with the optimizer, visible as
metrics, and can be reset from outside (e.g. by a validation hook).

Static weights, uniform weights and gradient blending are one transformation,
`blended`: its weights stay as initialised unless `reestimate` (the hook the training job
calls at super-epoch boundaries) replaces them from measured train and held-out losses.
"""
import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from optax.experimental import aggregating

from mirjax.optim import weighting
from mirjax.errors import ConfigError

LINEAR = ("sum", "static", "uniform", "gradient_blending")  # weights that ignore the gradients
COMBINERS = LINEAR + ("uncertainty", "gradnorm", "dwa", "pcgrad")


class BranchWeightsState(NamedTuple):
  """State of `blended`.

  weights: (K,) float32, the current weight of each branch loss.
  train_loss, heldout_loss: (K,) float32, per-branch losses measured at the last
    re-estimation (smoothed; meaningless while `estimates` is 0).
  estimates: () int32, how many loss measurements `reestimate` has taken.
  """
  weights: jax.Array
  train_loss: jax.Array
  heldout_loss: jax.Array
  estimates: jax.Array


def blended(weights: Sequence[float]) -> aggregating.Aggregator:
  """The weighted sum of branch gradients, weights held in the state (initially `weights`).

  `update` also accepts gradients already contracted with the current weights (a leading
  axis of 1 and the extra argument `contracted=True`): the train step does that for
  combiners whose weights do not depend on the gradients, one backward pass instead of K.
  """
  w0 = jnp.asarray(weights, jnp.float32)

  def init(params):
    del params
    zeros = jnp.zeros_like(w0)
    return BranchWeightsState(weights=w0, train_loss=zeros, heldout_loss=zeros,
                              estimates=jnp.zeros((), jnp.int32))

  def update(branch_grads, state, params=None, contracted=False, **extra_args):
    del params, extra_args
    return weighting.weighted_or_contracted(branch_grads, state.weights, contracted), state

  return aggregating.Aggregator(init, update)


def static_weights(weights: Sequence[float]) -> aggregating.Aggregator:
  """Fixed branch weights; all ones is the plain summed-loss gradient."""
  return blended(weights)


def blending_weights(train_prev, heldout_prev, train_now, heldout_now, *, normalize="sum",
                     eps=1e-2):
  """Gradient-blending weights from two loss measurements per branch (Wang, Tran & Feiszli,
  "What makes training multi-modal classification networks hard?", CVPR 2020).

  Generalisation G_k = L*_k(N) - L*_k(N+n) (held-out loss decrease); overfitting
  O_k(N) = L*_k(N) - L^T_k(N) (held-out minus train loss) and its change
  dO_k = O_k(N+n) - O_k(N). A branch that stops generalising (G_k <= 0) gets weight 0.

  Args:
    train_prev, heldout_prev: (K,) train and held-out losses at the earlier measurement.
    train_now, heldout_now: (K,) the same at the later one.
    normalize: "sum" (weights sum to 1) or "mean" (they average 1, sum to K).
    eps: relative: ``eps * mean_k dO_k^2`` is added to each dO_k^2, so a branch that does
      not overfit at all gets a large, finite weight, while the weights do not depend on
      the losses' scale (an absolute constant set them whenever it exceeded dO^2).

  Returns:
    (K,) weights; uniform when no branch generalised.
  """
  gen = heldout_prev - heldout_now
  d_over = (heldout_now - train_now) - (heldout_prev - train_prev)
  floor = eps * jnp.mean(d_over ** 2) + jnp.finfo(jnp.float32).tiny
  raw = jnp.maximum(gen, 0.0) / (d_over ** 2 + floor)  # w_k ∝ G_k / O_k^2 (Wang et al. 2020, eq. 6-7)
  k = raw.shape[0]
  total = jnp.sum(raw)
  w = jnp.where(total > 0, raw / jnp.where(total > 0, total, 1.0), jnp.full_like(raw, 1.0 / k))
  if normalize == "mean":
    return w * k
  if normalize != "sum":
    raise ConfigError(f"normalize must be 'sum' or 'mean', got {normalize!r}")
  return w


def reestimate(opt_state, train_loss, heldout_loss, *, smoothing=0.0, normalize="sum", eps=1e-2):
  """The validation hook of gradient blending: a new optimizer state whose branch weights
  come from `blending_weights` between the last measurement and this one.

  The first call only records the losses. Later calls set
  w <- smoothing * w + (1 - smoothing) * w_new, with losses compared to the last call's.

  Args:
    opt_state: an optimizer state built by `mirjax.optim.build` (holds one BranchWeightsState).
    train_loss, heldout_loss: (K,) per-branch losses on a training subset and on the
      held-out part carved from the training split, measured now (eval mode, so only once
      batch-norm running averages have settled: `settle_steps`).
    smoothing: weight of the previous weights in [0, 1).
    normalize, eps: see `blending_weights`.
  """
  def update(s):
    if not isinstance(s, BranchWeightsState):
      return s
    fresh = blending_weights(s.train_loss, s.heldout_loss, train_loss, heldout_loss,
                             normalize=normalize, eps=eps)
    weights = jnp.where(s.estimates > 0, smoothing * s.weights + (1.0 - smoothing) * fresh,
                        s.weights)
    return BranchWeightsState(weights=weights.astype(s.weights.dtype),
                              train_loss=jnp.asarray(train_loss, s.train_loss.dtype),
                              heldout_loss=jnp.asarray(heldout_loss, s.heldout_loss.dtype),
                              estimates=s.estimates + 1)
  return jax.tree.map(update, opt_state, is_leaf=lambda x: isinstance(x, BranchWeightsState))


def settle_steps(momentum: float, remaining: float = 0.05) -> int:
  """Steps after which a running average with `momentum` keeps less than `remaining` of
  its starting value (momentum ** n <= remaining): 299 for 0.99. Losses measured in eval
  mode before then score running batch-norm statistics that are still moving, not the
  network's generalisation."""
  if not 0.0 <= momentum < 1.0:
    raise ConfigError(f"a running-average momentum must be in [0, 1), got {momentum}")
  return 0 if momentum == 0.0 else int(math.ceil(math.log(remaining) / math.log(momentum)))


def build(cfg, branches: Sequence[str]) -> aggregating.Aggregator:
  """cfg.name: 'sum' (all weights 1), 'static' (cfg.weights: {branch: weight}), 'uniform'
  (all 1 / K), 'gradient_blending' (starts uniform; `reestimate` moves the weights), or a
  multi-task weighting of `weighting`: 'uncertainty', 'gradnorm', 'dwa', 'pcgrad'."""
  k = len(branches)
  if cfg.name == "uncertainty":
    return weighting.uncertainty(k, cfg.get("uncertainty_lr", 1e-2))
  if cfg.name == "gradnorm":
    if not cfg.get("gradnorm_layer"):
      raise ConfigError("optim.combine.name='gradnorm' needs optim.combine.gradnorm_layer: a "
                       "substring of the last shared layer's parameter paths")
    return weighting.gradnorm(k, cfg.gradnorm_layer, cfg.get("gradnorm_alpha", 1.5),
                              cfg.get("gradnorm_lr", 0.025))
  if cfg.name == "dwa":
    return weighting.dwa(k, cfg.get("window", 100), cfg.get("dwa_temperature", 2.0))
  if cfg.name == "pcgrad":
    return weighting.pcgrad(k, cfg.get("pcgrad_seed", 0))
  if cfg.name == "sum":
    return blended([1.0] * k)
  if cfg.name in ("uniform", "gradient_blending"):
    return blended([1.0 / k] * k if cfg.get("normalize", "sum") == "sum" else [1.0] * k)
  if cfg.name == "static":
    missing = set(branches) - set(cfg.weights)
    if missing:
      raise ConfigError(f"optim.combine.weights lacks branches {sorted(missing)}; it needs one "
                       f"weight for each of {list(branches)}")
    return blended([float(cfg.weights[b]) for b in branches])
  raise ConfigError(f"unknown optim.combine.name {cfg.name!r}; choose one of {list(COMBINERS)}")


# Combiners whose step uses weights already in the state before it sees the gradients: the
# same update for one backward pass contracted with those weights as for K per-branch ones.
# The state's next weights come from the losses (uncertainty, dwa) or, for gradnorm, from
# per-branch gradients of one layer (`branch_leaves`).
CONTRACTIBLE = LINEAR + ("uncertainty", "dwa", "gradnorm")


def contracts(cfg) -> bool:
  """Whether the combiner's update is the weighted sum with the weights in its state, so the
  train step may contract the branch axis with them inside one backward pass (exactly the
  same update)."""
  return cfg.name in CONTRACTIBLE and not cfg.get("per_branch_backward", False)


def branch_leaves(cfg) -> str | None:
  """The parameter-path substring whose per-branch gradients a contracted combiner still
  needs (GradNorm's layer), or None."""
  if cfg.name != "gradnorm":
    return None
  return cfg.get("gradnorm_layer") or None


STATES = (BranchWeightsState,) + weighting.WEIGHT_STATES


def branch_weights(opt_state):
  """The (n_branches,) weights inside an optimizer state built by `optim.build`."""
  found = [s.weights for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, STATES))
           if isinstance(s, STATES)]
  if len(found) != 1:
    raise ValueError(f"expected one branch-weights state in the optimizer state, found {len(found)}")
  return found[0]

