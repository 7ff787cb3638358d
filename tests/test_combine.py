"""Branch-combining transformations: gradient blending against a NumPy reference, on a
crafted over-fitting problem, and where branch weights do (and do not) change training."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from optax.experimental import aggregating

from mirjax.optim import combine


def numpy_blending_weights(train_prev, heldout_prev, train_now, heldout_now, eps):
  """Wang, Tran & Feiszli (2020): w_k = G_k / O_k^2 / Z, G = held-out loss decrease,
  O = change of (held-out - train) loss; non-generalising branches get 0, written in float64.
  eps is relative: eps times the mean of the O_k^2 is added to each."""
  overs = [(heldout_now[k] - train_now[k]) - (heldout_prev[k] - train_prev[k])
           for k in range(len(train_prev))]
  floor = eps * np.mean(np.square(overs))
  raw = []
  for k in range(len(train_prev)):
    gen = heldout_prev[k] - heldout_now[k]
    raw.append(max(gen, 0.0) / (overs[k] * overs[k] + floor))
  raw = np.array(raw)
  return raw / raw.sum() if raw.sum() > 0 else np.full(len(raw), 1.0 / len(raw))


CURVES = [  # (train_prev, heldout_prev, train_now, heldout_now): crafted loss curves
    ([1.0, 1.0, 1.0], [1.1, 1.1, 1.1], [0.8, 0.5, 0.9], [0.9, 1.0, 1.0]),  # 2nd overfits
    ([2.0, 1.5], [2.1, 1.6], [1.0, 1.4], [1.2, 1.55]),
    ([0.5, 0.5, 0.5, 0.5], [0.6, 0.6, 0.6, 0.6], [0.4, 0.3, 0.45, 0.2], [0.5, 0.7, 0.55, 0.58]),
    ([1.0, 1.0], [1.0, 1.0], [0.9, 0.9], [1.1, 1.2]),  # nothing generalises: uniform
]


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("eps", [1e-8, 1e-2])
def test_blending_weights_equal_the_numpy_reference(curve, eps):
  args = [np.array(a, np.float32) for a in curve]
  got = combine.blending_weights(*map(jnp.asarray, args), eps=eps)
  want = numpy_blending_weights(*[a.astype(np.float64) for a in args], eps=eps)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-6)
  mean = combine.blending_weights(*map(jnp.asarray, args), eps=eps, normalize="mean")
  np.testing.assert_allclose(np.asarray(mean), want * len(want), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("curve", CURVES[:3])
def test_blending_weights_do_not_depend_on_the_losses_scale(curve):
  """Loss changes 1000x smaller (a short window, a slow learning rate) give the same
  weights: eps is relative to the measured dO^2, so it never sets them. With an absolute
  eps (1e-4 before) the small-scale weights collapsed towards G_k alone."""
  args = [np.array(a, np.float64) for a in curve]
  small = [jnp.asarray(a * 1e-3, jnp.float32) for a in args]  # every G_k, dO_k 1000x smaller
  large = [jnp.asarray(a, jnp.float32) for a in args]
  np.testing.assert_allclose(combine.blending_weights(*small), combine.blending_weights(*large),
                             rtol=1e-3, atol=1e-5)


def test_settle_steps_of_running_averages():
  assert combine.settle_steps(0.99) == 299 and 0.99 ** 299 <= 0.05 < 0.99 ** 298
  assert combine.settle_steps(0.9) == 29 and combine.settle_steps(0.0) == 0
  with pytest.raises(ValueError, match="momentum"):
    combine.settle_steps(1.0)


def test_reestimate_records_first_then_moves_and_smooths():
  agg = combine.blended([0.5, 0.5])
  state = (optax.EmptyState(), agg.init({"w": jnp.zeros(2)}))
  t0, h0 = jnp.array([1.0, 1.0]), jnp.array([1.1, 1.1])
  s1 = combine.reestimate(state, t0, h0, smoothing=0.5)
  np.testing.assert_allclose(combine.branch_weights(s1), [0.5, 0.5])  # first call: record only
  t1, h1 = jnp.array([0.8, 0.5]), jnp.array([0.9, 1.0])
  s2 = combine.reestimate(s1, t1, h1, smoothing=0.5)
  fresh = numpy_blending_weights(t0, h0, t1, h1, 1e-2)
  np.testing.assert_allclose(combine.branch_weights(s2), 0.5 * 0.5 + 0.5 * fresh, rtol=1e-5)
  assert int(s2[1].estimates) == 2
  np.testing.assert_allclose(s2[1].heldout_loss, h1)


def _tx(weights, lr=0.05):
  return aggregating.process(optax.with_extra_args_support(optax.identity()),
                             combine.blended(weights), optax.adam(lr))


def test_a_branch_that_memorises_noise_loses_its_weight():
  """Branch "signal" predicts labels from features x through shared weights `a`; branch
  "noise" predicts random labels from x @ a plus a per-example table `b` it can memorise.
  Its training loss falls while its held-out loss does not: blending moves weight to "signal"."""
  rng = np.random.default_rng(0)
  n, d = 160, 6
  x = rng.standard_normal((n, d)).astype(np.float32)
  y = (x @ rng.standard_normal(d) > 0).astype(np.float32)
  noise = (rng.random(n) < 0.5).astype(np.float32)
  train, held = np.arange(120), np.arange(120, n)

  def branch_losses(p, idx):
    logits_a = x[idx] @ p["a"]
    la = optax.sigmoid_binary_cross_entropy(logits_a, y[idx]).mean()
    lb = optax.sigmoid_binary_cross_entropy(logits_a + p["b"][idx], noise[idx]).mean()
    return jnp.stack([la, lb])

  params = {"a": jnp.zeros(d), "b": jnp.zeros(n)}
  tx = _tx([0.5, 0.5])
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    grads = jax.jacrev(branch_losses)(params, train)  # leading branch axis
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  weights = []
  for it in range(6):
    state = combine.reestimate(state, branch_losses(params, train), branch_losses(params, held))
    weights.append(np.asarray(combine.branch_weights(state)))
    for _ in range(25):
      params, state = step(params, state)
  weights = np.array(weights)
  assert np.all(weights[1:, 1] < 0.2) and np.all(weights[1:, 0] > 0.8), weights  # from 0.5 each


def _shared_problem(share=True):
  """Two branch losses on one weight vector they share (or, with share=False, one each)
  and one private offset each."""
  rng = np.random.default_rng(1)
  xs = [jnp.asarray(rng.standard_normal((32, 4)), jnp.float32) for _ in range(2)]
  ts = [jnp.asarray(rng.standard_normal(32), jnp.float32) for _ in range(2)]
  w = (lambda p, k: p["shared"]) if share else (lambda p, k: p[f"w{k}"])

  def losses(p):
    return jnp.stack([jnp.mean((xs[k] @ w(p, k) + p[f"own{k}"] - ts[k]) ** 2) for k in range(2)])

  params = {"own0": jnp.zeros(()), "own1": jnp.zeros(())}
  params.update({"shared": jnp.full(4, 0.1)} if share else {"w0": jnp.full(4, 0.1), "w1": jnp.full(4, 0.1)})
  return losses, params


def _train(losses, params, tx, n=5):
  state = tx.init(params)
  for _ in range(n):
    grads = jax.jacrev(losses)(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params


def test_equal_weights_reproduce_summed_loss_training():
  losses, params = _shared_problem()
  plain = optax.adam(0.05)
  state = plain.init(params)
  p = params
  for _ in range(5):
    updates, state = plain.update(jax.grad(lambda q: jnp.sum(losses(q)))(p), state, p)
    p = optax.apply_updates(p, updates)
  cfg = ml_collections.ConfigDict({"name": "uniform", "normalize": "mean"})
  blended = _train(losses, params, aggregating.process(
      optax.with_extra_args_support(optax.identity()), combine.build(cfg, ["a", "b"]), optax.adam(0.05)))
  for k in p:
    np.testing.assert_allclose(blended[k], p[k], rtol=1e-6, atol=1e-7)


def test_weights_change_training_only_where_branches_share_parameters():
  """Adam divides each parameter's update by its gradient's scale, so a branch weight that
  scales every gradient a parameter sees changes nothing: weights matter only through the
  parameters several branches share."""
  losses, params = _shared_problem(share=False)
  base = _train(losses, params, _tx([1.0, 1.0]))
  skewed = _train(losses, params, _tx([1.0, 0.1]))
  for k in base:
    np.testing.assert_allclose(skewed[k], base[k], rtol=1e-4, atol=1e-6)
  losses, params = _shared_problem(share=True)
  base = _train(losses, params, _tx([1.0, 1.0]))
  scaled = _train(losses, params, _tx([3.0, 3.0]))  # the same ratio: the same training
  skewed = _train(losses, params, _tx([1.0, 0.1]))  # another ratio: another mix on "shared"
  for k in base:
    np.testing.assert_allclose(scaled[k], base[k], rtol=1e-4, atol=1e-6)
  assert float(jnp.max(jnp.abs(skewed["shared"] - base["shared"]))) > 1e-2


def test_contracted_gradients_equal_the_weighted_per_branch_sum():
  losses, params = _shared_problem()
  tx = _tx([0.7, 0.3])
  state = tx.init(params)
  per_branch = jax.jacrev(losses)(params)
  u1, _ = tx.update(per_branch, state, params)
  value, vjp = jax.vjp(losses, params)
  (contracted,) = vjp(jnp.array([0.7, 0.3]))
  u2, _ = tx.update(jax.tree.map(lambda g: g[None], contracted), state, params, contracted=True)
  for k in u1:
    np.testing.assert_allclose(u1[k], u2[k], rtol=1e-5, atol=1e-7)
