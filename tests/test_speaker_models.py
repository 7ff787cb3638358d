"""Speaker verification pieces: margin losses and their warm-up (models/margin.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax.errors import ConfigError
from mirjax.models import margin


def _cosines(rng, batch=6, n_classes=5, low=-0.95, high=0.95):
  return rng.uniform(low, high, (batch, n_classes)).astype(np.float32)


def _np_log_softmax(z):
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_cosine_classifier_gives_cosines_with_the_class_rows():
  x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
  clf = margin.CosineClassifier(n_classes=6)
  params = clf.init(jax.random.key(0), x)
  w = np.asarray(params["params"]["weight"])
  assert w.shape == (6, 4)
  want = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
  np.testing.assert_allclose(clf.apply(params, x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("easy_margin", [False, True])
def test_aam_logits_are_the_arcface_formula_on_the_target_only(easy_margin):
  rng = np.random.default_rng(1)
  m, s = 0.3, 32.0
  c = _cosines(rng, low=0.05)  # theta + m < pi and cos > 0: no threshold branch involved
  labels = rng.integers(0, c.shape[1], c.shape[0])
  want = s * c.astype(np.float64)
  rows = np.arange(len(labels))
  want[rows, labels] = s * np.cos(np.arccos(c[rows, labels].astype(np.float64)) + m)
  got = np.asarray(margin.aam_logits(jnp.asarray(c), jnp.asarray(labels), m, s, easy_margin))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
  diff = got - np.asarray(margin.aam_logits(jnp.asarray(c), jnp.asarray(labels), 0.0, s, easy_margin))
  target = np.zeros_like(diff, bool)
  target[rows, labels] = True
  assert np.all(diff[~target] == 0.0) and np.all(diff[target] < 0.0)


def test_aam_past_pi_minus_m_follows_wespeaker_and_easy_margin_keeps_the_cosine():
  m, s = 0.5, 10.0
  th = np.cos(np.pi - m)  # theta + m = pi here
  c = np.array([[th - 0.1, 0.1], [th - 1e-4, 0.1], [th + 1e-4, 0.1], [-0.3, 0.1], [0.4, 0.1]], np.float32)
  labels = jnp.zeros(len(c), jnp.int32)
  got = np.asarray(margin.aam_logits(jnp.asarray(c), labels, m, s))[:, 0]
  np.testing.assert_allclose(got[0], s * (c[0, 0] - 1.0 - th), rtol=1e-5)  # continuous fix below th
  np.testing.assert_allclose(got[1:3], -s, atol=2e-2)  # both sides of th meet at s cos(pi) = -s
  np.testing.assert_allclose(got[3:], s * np.cos(np.arccos(c[3:, 0]) + m), rtol=1e-5)
  easy = np.asarray(margin.aam_logits(jnp.asarray(c), labels, m, s, easy_margin=True))[:, 0]
  np.testing.assert_allclose(easy[:4], s * c[:4, 0], rtol=1e-6)  # cos <= 0: no margin
  np.testing.assert_allclose(easy[4], s * np.cos(np.arccos(c[4, 0]) + m), rtol=1e-5)


def test_am_logits_subtract_the_margin_from_the_target_only():
  rng = np.random.default_rng(2)
  c = _cosines(rng)
  labels = rng.integers(0, c.shape[1], c.shape[0])
  want = 30.0 * c
  want[np.arange(len(labels)), labels] = 30.0 * (c[np.arange(len(labels)), labels] - 0.35)
  np.testing.assert_allclose(margin.am_logits(jnp.asarray(c), jnp.asarray(labels), 0.35, 30.0),
                             want, rtol=1e-5)


@pytest.mark.parametrize("kind", ["aam", "am"])
def test_margin_losses_are_per_example_cross_entropy_of_the_margin_logits(kind):
  rng = np.random.default_rng(3)
  c = _cosines(rng)
  labels = rng.integers(0, c.shape[1], c.shape[0])
  m, s = 0.2, 16.0
  z = s * c.astype(np.float64)
  rows = np.arange(len(labels))
  t = c[rows, labels].astype(np.float64)
  z[rows, labels] = s * (np.cos(np.arccos(t) + m) if kind == "aam" else t - m)
  want = -_np_log_softmax(z)[rows, labels]
  got = margin.margin_loss(kind, jnp.asarray(c), jnp.asarray(labels), m, s)
  assert got.shape == (len(labels),)
  np.testing.assert_allclose(got, want, rtol=1e-4)
  with pytest.raises(ConfigError, match="unknown margin loss"):
    margin.margin_loss("sphere", jnp.asarray(c), jnp.asarray(labels), m, s)


def test_aam_gradient_is_finite_at_cosines_of_plus_and_minus_one():
  c = jnp.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5]])
  g = jax.grad(lambda c: margin.aam_softmax_loss(c, jnp.array([0, 1]), 0.2, 32.0).sum())(c)
  assert np.all(np.isfinite(np.asarray(g)))


def _wespeaker_margin(step, final, start, end, initial, kind):
  """wespeaker's MarginScheduler.get_increase_margin and step, written out in NumPy."""
  if step >= end:
    return final
  if step < start:
    return initial
  u = (step - start) / (end - start)
  ratio = 1.0 - np.exp(u * np.log(1e-3 / (1.0 + 1e-6))) if kind == "exp" else u
  return initial + (final - initial) * ratio


@pytest.mark.parametrize("kind", ["exp", "linear"])
def test_margin_warmup_is_wespeakers_schedule(kind):
  start, end, final = 100, 300, 0.2
  steps = [0, 99, 100, 150, 200, 250, 299, 300, 1000]
  got = [float(margin.margin_schedule(t, final, start, end, kind=kind)) for t in steps]
  want = [_wespeaker_margin(t, final, start, end, 0.0, kind) for t in steps]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert got[0] == 0.0 and got[-1] == pytest.approx(final)
  if kind == "linear":
    assert got[4] == pytest.approx(0.1)  # halfway in steps, halfway in margin
  else:
    assert got[4] == pytest.approx(0.2 * (1 - 10 ** -1.5), rel=1e-5)  # the exp curve rises early
  jitted = jax.jit(lambda t: margin.margin_schedule(t, final, start, end, kind=kind))
  np.testing.assert_allclose([float(jitted(jnp.int32(t))) for t in steps], got, rtol=1e-6)
  with pytest.raises(ConfigError, match="before it starts"):
    margin.margin_schedule(0, final, 10, 5)
