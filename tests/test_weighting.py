"""Multi-task loss weightings (mirjax/optim/weighting.py) against NumPy references on crafted
gradients and losses, and on small problems where their behaviour is known."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from optax.experimental import aggregating

from mirjax.optim import combine, weighting

RNG = np.random.default_rng(0)


def _grads(k=3):
  """Per-branch gradients of a two-leaf parameter tree, leading branch axis."""
  return {"enc": {"dense": jnp.asarray(RNG.standard_normal((k, 4, 3)), jnp.float32)},
          "head": jnp.asarray(RNG.standard_normal((k, 5)), jnp.float32)}


def _flat(g):
  return np.concatenate([np.asarray(x).reshape(x.shape[0], -1) for x in jax.tree.leaves(g)], axis=1)


def test_gramian_equals_flattened_inner_products():
  g = _grads()
  flat = _flat(g)
  np.testing.assert_allclose(weighting.gramian(g), flat @ flat.T, rtol=1e-5)
  enc = np.asarray(g["enc"]["dense"]).reshape(3, -1)
  np.testing.assert_allclose(weighting.gramian(g, lambda p: "dense" in p), enc @ enc.T, rtol=1e-5)


def test_uncertainty_matches_numpy():
  agg = weighting.uncertainty(3, learning_rate=0.1)
  state = agg.init(None)
  s = np.zeros(3)
  for losses in ([1.0, 2.0, 0.5], [0.8, 1.5, 0.4], [0.6, 1.2, 0.3]):
    g = _grads()
    out, state = agg.update(g, state, branch_losses=jnp.asarray(losses))
    w = 0.5 * np.exp(-s)  # the weights in force for this step
    np.testing.assert_allclose(_flat(jax.tree.map(lambda x: x[None], out))[0], w @ _flat(g), rtol=1e-5)
    s = s - 0.1 * 0.5 * (1 - np.exp(-s) * np.array(losses))  # d/ds [exp(-s) L / 2 + s / 2]
    np.testing.assert_allclose(state.log_var, s, rtol=1e-5)
    np.testing.assert_allclose(state.weights, 0.5 * np.exp(-s), rtol=1e-5)


def test_gradnorm_matches_numpy():
  agg = weighting.gradnorm(3, layer="dense", alpha=1.5, learning_rate=0.05)
  state = agg.init(None)
  w, l0 = np.ones(3), None
  for losses in ([1.0, 2.0, 0.5], [0.9, 1.2, 0.45], [0.7, 1.0, 0.44]):
    g = _grads()
    _, state = agg.update(g, state, branch_losses=jnp.asarray(losses))
    l = np.array(losses)
    l0 = l if l0 is None else l0
    n = np.linalg.norm(np.asarray(g["enc"]["dense"]).reshape(3, -1), axis=1)
    gw = w * n
    r = (l / l0) / np.mean(l / l0)
    target = gw.mean() * r ** 1.5
    w = np.maximum(w - 0.05 * np.sign(gw - target) * n, 1e-3)
    w = w * 3 / w.sum()
    np.testing.assert_allclose(state.weights, w, rtol=1e-5)


def test_dwa_matches_numpy():
  agg = weighting.dwa(2, window=2, temperature=2.0)
  state = agg.init(None)
  history = [[1.0, 1.0], [1.0, 1.0], [0.9, 0.5], [0.7, 0.5], [0.75, 0.3], [0.73, 0.3]]
  means = []
  for t, losses in enumerate(history):
    _, state = agg.update(_grads(2), state, branch_losses=jnp.asarray(losses))
    if t % 2 == 1:
      means.append(np.mean(history[t - 1:t + 1], axis=0))
    if len(means) < 2:
      want = np.ones(2)  # equal weights until two windows have passed
    else:
      r = means[-1] / means[-2]
      want = 2 * np.exp(r / 2) / np.exp(r / 2).sum()
    np.testing.assert_allclose(state.weights, want, rtol=1e-5)
  assert state.weights[0] > state.weights[1]  # task 0's loss falls slower: it gets more weight


def _numpy_pcgrad(flat, order):
  out = []
  for i in range(len(flat)):
    gi = flat[i].astype(np.float64).copy()
    for j in order[i]:
      if j != i and gi @ flat[j] < 0:
        gi -= (gi @ flat[j]) / (flat[j] @ flat[j]) * flat[j]
    out.append(gi)
  return np.sum(out, axis=0)


@pytest.mark.parametrize("seed", range(4))
def test_pcgrad_coefficients_match_numpy(seed):
  rng = np.random.default_rng(seed)
  g = {"a": jnp.asarray(rng.standard_normal((4, 6)), jnp.float32),
       "b": jnp.asarray(rng.standard_normal((4, 3, 2)), jnp.float32)}
  flat = _flat(g)
  for order in (np.tile(np.arange(4), (4, 1)), np.array([rng.permutation(4) for _ in range(4)])):
    c = weighting.pcgrad_coefficients(weighting.gramian(g), jnp.asarray(order))
    np.testing.assert_allclose(np.asarray(c).sum(0) @ flat, _numpy_pcgrad(flat, order),
                               rtol=1e-4, atol=1e-5)


def test_pcgrad_projects_conflicts_and_leaves_agreement_alone():
  agree = {"w": jnp.array([[1.0, 0.0], [1.0, 1.0]])}  # cosine > 0: the plain sum
  agg = weighting.pcgrad(2)
  out, state = agg.update(agree, agg.init(None))
  np.testing.assert_allclose(out["w"], [2.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(state.weights, [1.0, 1.0])
  conflict = {"w": jnp.array([[1.0, 0.0], [-1.0, 1.0]])}  # cosine < 0
  out, _ = agg.update(conflict, agg.init(None))
  g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])
  p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2  # each loses its component along the other
  p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
  np.testing.assert_allclose(out["w"], p1 + p2, rtol=1e-6)
  assert p1 @ g2 >= -1e-12 and p2 @ g1 >= -1e-12


def test_gradnorm_moves_toward_equal_training_rates():
  """Two regression tasks through one shared layer; task 1's targets are 10x larger, so its
  gradient dominates: GradNorm shifts weight to task 0 until the weighted gradient norms on
  the shared layer follow the tasks' training rates."""
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.standard_normal((64, 8)), jnp.float32)
  ys = [jnp.asarray(x @ rng.standard_normal((8,)) * s, jnp.float32) for s in (1.0, 10.0)]

  def losses(p):
    h = jnp.tanh(x @ p["shared"])
    return jnp.stack([jnp.mean((h @ p[f"head{k}"] - ys[k]) ** 2) for k in range(2)])

  params = {"shared": jnp.asarray(rng.standard_normal((8, 8)) * 0.3, jnp.float32),
            "head0": jnp.asarray(rng.standard_normal(8) * 0.1, jnp.float32),
            "head1": jnp.asarray(rng.standard_normal(8) * 0.1, jnp.float32)}
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                           weighting.gradnorm(2, layer="shared", alpha=1.0, learning_rate=0.02),
                           optax.adam(1e-2))

  @jax.jit
  def step(params, state):
    l, grads = losses(params), jax.jacrev(losses)(params)
    weighted = combine.branch_weights(state) * jnp.linalg.norm(grads["shared"].reshape(2, -1), axis=1)
    updates, state = tx.update(grads, state, params, branch_losses=l)
    return optax.apply_updates(params, updates), state, weighted[1] / weighted[0]

  state = tx.init(params)
  ratios = []
  for _ in range(150):
    params, state, ratio = step(params, state)
    ratios.append(float(ratio))
  w = np.asarray(combine.branch_weights(state))
  assert w[0] > 1.0 > w[1] and w.sum() == pytest.approx(2.0, rel=1e-5)
  assert abs(np.log(np.mean(ratios[-20:]))) < 0.5 * abs(np.log(ratios[0]))  # norms drew together


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm", "dwa", "pcgrad"])
def test_build_and_branch_weights(name):
  cfg = ml_collections.ConfigDict({"name": name, "gradnorm_layer": "dense"})
  agg = combine.build(cfg, ["a", "b", "c"])
  state = (optax.EmptyState(), agg.init(None), optax.EmptyState())
  assert combine.branch_weights(state).shape == (3,)
  # pcgrad projects the per-branch gradients; the others combine with their state's weights
  assert combine.contracts(cfg) == (name != "pcgrad")
  assert combine.branch_leaves(cfg) == ("dense" if name == "gradnorm" else None)


@pytest.mark.parametrize("name", ["uncertainty", "dwa", "gradnorm"])
def test_contracted_step_equals_the_per_branch_step(name):
  """Ten steps of uncertainty / DWA / GradNorm weighting (weights changing) give the same
  parameters from per-branch gradients as from one backward pass contracted with the
  state's current weights plus, for GradNorm, the per-branch gradients of its layer alone,
  as the train step does."""
  x = jnp.asarray(RNG.standard_normal((16, 4)), jnp.float32)

  def losses(p):
    return jnp.stack([jnp.mean((x @ p["shared"] + p["head"][k] - t) ** 2)
                      for k, t in enumerate((1.0, -2.0, 0.5))])

  cfg = ml_collections.ConfigDict({"name": name, "window": 2, "uncertainty_lr": 0.3,
                                   "gradnorm_layer": "shared", "gradnorm_lr": 0.2})
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                           combine.build(cfg, "abc"), optax.sgd(0.05))
  p1 = p2 = {"shared": jnp.zeros(4), "head": jnp.zeros(3)}
  s1, s2 = tx.init(p1), tx.init(p2)
  for _ in range(10):
    u, s1 = tx.update(jax.jacrev(losses)(p1), s1, p1, branch_losses=losses(p1))
    p1 = optax.apply_updates(p1, u)
    value, vjp = jax.vjp(losses, p2)
    (g,) = vjp(combine.branch_weights(s2))
    layer = {"shared": jax.jacrev(losses)(p2)["shared"], "head": None}
    u, s2 = tx.update(jax.tree.map(lambda a: a[None], g), s2, p2, branch_losses=value,
                      contracted=True, layer_grads=layer)
    p2 = optax.apply_updates(p2, u)
  w = np.asarray(combine.branch_weights(s1))
  assert np.ptp(w) > 1e-3  # the weights did move
  np.testing.assert_allclose(combine.branch_weights(s2), w, rtol=1e-5)
  for k in p1:
    np.testing.assert_allclose(p2[k], p1[k], rtol=1e-5, atol=1e-7)


def test_equal_weighting_reproduces_summed_loss_training():
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.standard_normal((16, 4)), jnp.float32)

  def losses(p):
    return jnp.stack([jnp.mean((x @ p["w"] - t) ** 2) for t in (1.0, -2.0, 0.5)])

  p0 = {"w": jnp.zeros(4)}
  summed, equal = p0, p0
  plain = optax.adam(0.1)
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                           combine.build(ml_collections.ConfigDict({"name": "sum"}), "abc"),
                           optax.adam(0.1))
  s1, s2 = plain.init(p0), tx.init(p0)
  for _ in range(5):
    u, s1 = plain.update(jax.grad(lambda p: losses(p).sum())(summed), s1)
    summed = optax.apply_updates(summed, u)
    u, s2 = tx.update(jax.jacrev(losses)(equal), s2, equal, branch_losses=losses(equal))
    equal = optax.apply_updates(equal, u)
  np.testing.assert_allclose(equal["w"], summed["w"], rtol=1e-5)
