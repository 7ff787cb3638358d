"""CKA (mirjax.evaluation.similarity) against a direct NumPy computation of the formulas
(float64 reference, float32 mirjax: relative tolerance 1e-4) and against the properties CKA
is known to have."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import ortho_group

from mirjax.evaluation import similarity as sim


def _hsic_ref(k, l):
  n = len(k)
  h = np.eye(n) - np.ones((n, n)) / n
  return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def _unbiased_ref(k, l):
  m = len(k)
  k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
  one = np.ones(m)
  return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((m - 1) * (m - 2))
          - 2 / (m - 2) * one @ k @ l @ one) / (m * (m - 3))


def _rbf_ref(x, frac):
  d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
  med = np.median(d2[np.triu_indices(len(x), 1)])
  return np.exp(-d2 / (2 * frac ** 2 * med))


def _features(n=60, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, 12))
  y = np.tanh(x @ rng.standard_normal((12, 7))) + 0.5 * rng.standard_normal((n, 7))
  return x, y


def test_hsic_cka_and_kernels_equal_the_formulas():
  x, y = _features()
  kx, ky = x @ x.T, y @ y.T
  f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
  np.testing.assert_allclose(sim.hsic(f32(kx), f32(ky)), _hsic_ref(kx, ky), rtol=1e-4)
  np.testing.assert_allclose(sim.unbiased_hsic(f32(kx), f32(ky)), _unbiased_ref(kx, ky), rtol=1e-4)
  want = _hsic_ref(kx, ky) / np.sqrt(_hsic_ref(kx, kx) * _hsic_ref(ky, ky))
  np.testing.assert_allclose(sim.cka(f32(kx), f32(ky)), want, rtol=1e-4)
  np.testing.assert_allclose(sim.linear_cka(f32(x), f32(y)), want, rtol=1e-4)
  for frac in (0.2, 0.8):
    np.testing.assert_allclose(sim.rbf_gram(f32(x), frac), _rbf_ref(x, frac), rtol=1e-4, atol=1e-6)
    rx, ry = _rbf_ref(x, frac), _rbf_ref(y, frac)
    np.testing.assert_allclose(sim.feature_cka(f32(x), f32(y), "rbf", frac),
                               _hsic_ref(rx, ry) / np.sqrt(_hsic_ref(rx, rx) * _hsic_ref(ry, ry)), rtol=1e-4)
  assert float(jax.jit(sim.feature_cka, static_argnums=2)(f32(x), f32(y), "rbf")) > 0
  with pytest.raises(ValueError, match="kernel must be one of"):
    sim.gram(f32(x), "cosine")
  with pytest.raises(ValueError, match="more than 3 examples"):
    sim.unbiased_hsic(f32(kx[:3, :3]), f32(ky[:3, :3]))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_cka_is_one_on_itself_and_invariant_to_rotation_and_isotropic_scaling(kernel):
  x, y = _features()
  q = ortho_group.rvs(12, random_state=1)
  cka = lambda a, b: float(sim.feature_cka(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), kernel))  # noqa: E731
  assert cka(x, x) == pytest.approx(1.0, abs=1e-5)
  base = cka(x, y)
  assert 0.1 < base < 0.99
  assert cka(x @ q, y) == pytest.approx(base, rel=1e-4)
  assert cka(3.7 * x, 0.2 * y) == pytest.approx(base, rel=1e-4)
  if kernel == "linear":  # linear CKA is also blind to a shift of the features
    assert cka(x + 5.0, y) == pytest.approx(base, rel=1e-4)


def test_independent_features_have_cka_near_zero_at_large_n():
  rng = np.random.default_rng(2)
  x, y = rng.standard_normal((4000, 10)), rng.standard_normal((4000, 10))
  assert float(sim.linear_cka(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))) < 0.01
  terms = sum(sim.minibatch_hsic_terms(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
              for a, b in zip(np.split(x, 40), np.split(y, 40)))
  assert abs(float(sim.minibatch_cka(terms))) < 0.01


def test_minibatch_cka_tends_to_the_full_cka_and_is_one_on_itself():
  x, y = _features(n=4000, seed=3)
  full = float(sim.linear_cka(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)))
  xs, ys = np.split(x.astype(np.float32), 50), np.split(y.astype(np.float32), 50)
  terms = jax.jit(lambda a, b: sim.minibatch_hsic_terms(a, b))
  total = sum(terms(a, b) for a, b in zip(xs, ys))
  assert float(sim.minibatch_cka(total)) == pytest.approx(full, abs=0.02)
  np.testing.assert_allclose(
      [_unbiased_ref(a @ a.T, b @ b.T) for a, b in ((x[:80], y[:80]), (x[:80], x[:80]))],
      [float(terms(xs[0], ys[0])[0]), float(terms(xs[0], xs[0])[0])], rtol=2e-4)
  self_terms = sum(terms(a, a) for a in xs)
  assert float(sim.minibatch_cka(self_terms)) == pytest.approx(1.0, abs=1e-5)
