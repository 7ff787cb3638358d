"""Multi-task loss weighting as branch-combining transformations over per-branch gradients.

Each is an `optax.experimental.aggregating.Aggregator`: per-branch gradients (leading
branch axis, g[k] = d loss_k / d params) and the branch losses (extra argument
`branch_losses`) in, one gradient out; its weights live in its state (`.weights`, logged
and checkpointed). Methods that need the gradients' geometry use the per-branch Gramian
G[i, j] = sum over leaves of <g_i, g_j>, never a flattened copy of sharded gradients.

  uncertainty  Kendall, Gal & Cipolla (CVPR 2018): learned log-variances s_k
  gradnorm     Chen et al. (ICML 2018): weights that balance gradient norms on a shared layer
  dwa          Liu, Johns & Davison (CVPR 2019): dynamic weight average of loss ratios
  pcgrad       Yu et al. (NeurIPS 2020): projecting conflicting gradients
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from optax.experimental import aggregating


def gramian(branch_grads, leaf_filter=None):
  """G[i, j] = sum over leaves of <g_i, g_j> (K x K), the leaves' other axes contracted in
  place (sharded leaves stay sharded); `leaf_filter(path) -> bool` picks leaves."""
  leaves = jax.tree_util.tree_leaves_with_path(branch_grads)
  terms = [jnp.einsum("i...,j...->ij", g, g) for path, g in leaves
           if leaf_filter is None or leaf_filter(jax.tree_util.keystr(path))]
  if not terms:
    raise ValueError("no gradient leaf matched the layer filter")
  return sum(terms)


def weighted_sum(branch_grads, weights):
  """sum_k w_k g_k over the leading branch axis of every leaf."""
  return jax.tree.map(lambda g: jnp.tensordot(weights.astype(g.dtype), g, axes=1), branch_grads)


def weighted_or_contracted(branch_grads, weights, contracted=False):
  """sum_k w_k g_k, or, for gradients the train step already contracted with these same
  `weights` inside its backward pass (leading axis 1), that one gradient."""
  n = jax.tree.leaves(branch_grads)[0].shape[0]
  if contracted:
    if n != 1:
      raise ValueError(f"contracted gradients have a leading axis of 1, got {n}")
    return jax.tree.map(lambda g: g[0], branch_grads)
  if n != weights.shape[0]:
    raise ValueError(f"{weights.shape[0]} branch weights for {n} branches")
  return weighted_sum(branch_grads, weights)


def _losses(extra_args):
  if "branch_losses" not in extra_args:
    raise ValueError("this weighting needs the branch losses: pass branch_losses= to update()")
  return jax.lax.stop_gradient(extra_args["branch_losses"])


class UncertaintyState(NamedTuple):
  """log_var: (K,) learned s_k = log sigma_k^2; weights: (K,) 0.5 exp(-s_k); count: () steps."""
  log_var: jax.Array
  weights: jax.Array
  count: jax.Array


def uncertainty(k: int, learning_rate: float = 1e-2) -> aggregating.Aggregator:
  """Homoscedastic-uncertainty weighting: minimise sum_k exp(-s_k) L_k / 2 + s_k / 2.

  The gradient is sum_k w_k g_k with w_k = exp(-s_k) / 2; s takes a plain gradient step
  of `learning_rate` on that objective each update (dJ/ds_k = (1 - exp(-s_k) L_k) / 2).
  The weights of a step depend on the losses only, so the train step may contract (see
  `combine.contracts`).
  """
  def init(params):
    del params
    s = jnp.zeros(k, jnp.float32)
    return UncertaintyState(s, 0.5 * jnp.exp(-s), jnp.zeros((), jnp.int32))

  def update(branch_grads, state, params=None, contracted=False, **extra_args):
    del params
    losses = _losses(extra_args)
    combined = weighted_or_contracted(branch_grads, state.weights, contracted)
    grad_s = 0.5 * (1.0 - jnp.exp(-state.log_var) * losses)  # Kendall et al. 2018, eq. 7
    s = state.log_var - learning_rate * grad_s
    return combined, UncertaintyState(s, 0.5 * jnp.exp(-s), state.count + 1)

  return aggregating.Aggregator(init, update)


class GradNormState(NamedTuple):
  """weights: (K,) task weights (sum K); initial_loss: (K,) L_k(0); count: () steps."""
  weights: jax.Array
  initial_loss: jax.Array
  count: jax.Array


def gradnorm(k: int, layer: str, alpha: float = 1.5, learning_rate: float = 0.025):
  """GradNorm: move the weights so each task's weighted gradient norm on the shared
  `layer` approaches the mean norm times its relative inverse training rate to the `alpha`.

  G_k = w_k ||g_k||_layer, r_k = (L_k / L_k(0)) / mean_j(L_j / L_j(0)), target
  G_mean r_k^alpha (held constant); the weights take a gradient step of `learning_rate` on
  sum_k |G_k - target_k| and are renormalised to sum to K (Chen et al. 2018, eq. 1-2).

  Args:
    layer: a substring of the parameter paths (jax.tree_util.keystr) of the last shared
      layer, e.g. "encoder']['dense" ; the norms are taken over the leaves it matches.

  The step combines with the weights already in the state, so the train step may contract
  (`combine.contracts`); it then passes the per-branch gradients of `layer` alone as the
  extra argument `layer_grads` (`combine.branch_leaves`).
  """
  def init(params):
    del params
    return GradNormState(jnp.ones(k, jnp.float32), jnp.zeros(k, jnp.float32), jnp.zeros((), jnp.int32))

  def update(branch_grads, state, params=None, contracted=False, layer_grads=None, **extra_args):
    del params
    losses = _losses(extra_args)
    if contracted and layer_grads is None:
      raise ValueError("contracted gradients need the per-branch gradients of the layer as layer_grads=")
    per_branch = layer_grads if contracted else branch_grads
    initial = jnp.where(state.count == 0, losses, state.initial_loss)
    norms = jnp.sqrt(jnp.maximum(jnp.diag(gramian(per_branch, lambda p: layer in p)), 0.0))
    g_w = state.weights * norms
    ratio = losses / jnp.maximum(initial, 1e-12)
    rate = ratio / jnp.mean(ratio)
    target = jax.lax.stop_gradient(jnp.mean(g_w) * rate ** alpha)
    grad_w = jnp.sign(g_w - target) * norms  # d/dw_k sum_j |w_j n_j - t_j|
    w = jnp.maximum(state.weights - learning_rate * grad_w, 1e-3)
    w = w * k / jnp.sum(w)
    return weighted_or_contracted(branch_grads, state.weights, contracted), GradNormState(w, initial, state.count + 1)

  return aggregating.Aggregator(init, update)


class DWAState(NamedTuple):
  """weights: (K,); loss_sum: (K,) and count: () of the running window; last, before_last:
  (K,) mean losses of the two windows before; windows: () windows completed."""
  weights: jax.Array
  loss_sum: jax.Array
  count: jax.Array
  last: jax.Array
  before_last: jax.Array
  windows: jax.Array


def dwa(k: int, window: int = 100, temperature: float = 2.0) -> aggregating.Aggregator:
  """Dynamic weight average: w_k = K exp(r_k / T) / sum_j exp(r_j / T), with r_k the ratio
  of task k's mean loss over the last two windows (of `window` steps, an "epoch"); equal
  weights until two windows have passed (Liu et al. 2019, eq. 7). The weights of a step
  depend on the losses only, so the train step may contract (see `combine.contracts`)."""
  def init(params):
    del params
    z = jnp.zeros(k, jnp.float32)
    return DWAState(jnp.ones(k, jnp.float32), z, jnp.zeros((), jnp.int32), z, z,
                    jnp.zeros((), jnp.int32))

  def update(branch_grads, state, params=None, contracted=False, **extra_args):
    del params
    combined = weighted_or_contracted(branch_grads, state.weights, contracted)
    loss_sum, count = state.loss_sum + _losses(extra_args), state.count + 1
    done = count >= window
    mean = loss_sum / count
    last = jnp.where(done, mean, state.last)
    before = jnp.where(done, state.last, state.before_last)
    windows = state.windows + done.astype(jnp.int32)
    ratio = last / jnp.maximum(before, 1e-12)
    fresh = k * jax.nn.softmax(ratio / temperature)
    weights = jnp.where(done & (windows >= 2), fresh, state.weights)
    return combined, DWAState(weights, jnp.where(done, 0.0, loss_sum),
                              jnp.where(done, 0, count), last, before, windows)

  return aggregating.Aggregator(init, update)


class PCGradState(NamedTuple):
  """weights: (K,) the coefficients of the last combined gradient on the branch
  gradients; key: PRNG key of the projection order; count: () steps."""
  weights: jax.Array
  key: jax.Array
  count: jax.Array


def pcgrad_coefficients(gram, order):
  """Coefficients c (K, K) with projected g_i = sum_j c[i, j] g_j: for each task i, for each
  other task j in `order[i]`, if <g_i', g_j> < 0 subtract its projection onto g_j
  (Yu et al. 2020, Alg. 1), all in the span of the g's through the Gramian."""
  k = gram.shape[0]
  eye = jnp.eye(k, dtype=gram.dtype)

  def for_task(i, order_i):
    def body(c, j):
      dot = c @ gram[:, j]  # <g_i', g_j>
      step = jnp.where((dot < 0) & (j != i), dot / jnp.maximum(gram[j, j], 1e-30), 0.0)
      return c - step * eye[j], None
    c, _ = jax.lax.scan(body, eye[i], order_i)
    return c

  return jax.vmap(for_task)(jnp.arange(k), order)


def pcgrad(k: int, seed: int = 0) -> aggregating.Aggregator:
  """PCGrad: each task's gradient loses its components that conflict with the others'
  (in a random order per task and step), then the projected gradients are summed."""
  def init(params):
    del params
    return PCGradState(jnp.ones(k, jnp.float32), jax.random.key_data(jax.random.key(seed)),
                       jnp.zeros((), jnp.int32))

  def update(branch_grads, state, params=None, **extra_args):
    del params, extra_args
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.count)
    order = jax.vmap(lambda kk: jax.random.permutation(kk, k))(jax.random.split(key, k))
    coeffs = pcgrad_coefficients(gramian(branch_grads), order)
    weights = jnp.sum(coeffs, axis=0)  # sum_i g_i' = sum_j (sum_i c[i, j]) g_j
    return weighted_sum(branch_grads, weights), PCGradState(weights, state.key, state.count + 1)

  return aggregating.Aggregator(init, update)


WEIGHT_STATES = (UncertaintyState, GradNormState, DWAState, PCGradState)
