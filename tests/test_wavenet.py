"""WaveNet: mu-law against librosa, causality, and cached generation = the naive sampler."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax.audio.mulaw import mu_law_decode, mu_law_encode
from mirjax.models import wavenet as wn


def test_mu_law_classes_are_librosas():
  librosa = pytest.importorskip("librosa")
  x = np.random.default_rng(0).uniform(-1, 1, 50_000)
  x[:5] = [-1.0, 0.0, 1.0, 1e-4, -1e-4]
  got = np.asarray(mu_law_encode(x))
  want = librosa.mu_compress(x, mu=255, quantize=True) + 128
  # float32 against float64: classes may differ only where the companded value is within
  # 1e-6 of a bin edge
  comp = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255)
  near_edge = np.min(np.abs(comp[:, None] - np.linspace(-1, 1, 256)[None]), axis=1) < 1e-6
  assert np.all((got == want) | near_edge) and got.min() == 0 and got.max() == 255
  same = got == want
  np.testing.assert_allclose(np.asarray(mu_law_decode(got))[same],
                             librosa.mu_expand(want - 128, mu=255, quantize=True)[same], atol=1e-6)
  # round trip: within half a bin of the companded value (at most 0.0218 near |x| = 1)
  assert np.abs(np.asarray(mu_law_decode(got)) - x).max() < 0.045


def _model(hop=0, upsample="repeat"):
  return wn.WaveNet(dilations=wn.dilations(2, 4), residual=16, gate=16, skip=32, hop=hop, upsample=upsample)


def _sharpen(params, scale=4.0):  # peaky logits, so a sample depends on every computation
  return jax.tree.map(lambda p: p * scale, params)


def test_no_output_depends_on_a_later_sample():
  m = _model(hop=8)
  rng = np.random.default_rng(1)
  q = jnp.asarray(rng.integers(0, 256, (2, 64)), jnp.int32)
  roll = jnp.asarray(rng.random((2, 8, 128)) < 0.1, jnp.float32)
  params = m.init(jax.random.key(0), {"classes": q, "roll": roll})
  base = np.asarray(m.apply(params, {"classes": q, "roll": roll})["wavenet"])
  for t in (0, 17, 40, 63):
    changed = q.at[:, t].set((q[:, t] + 100) % 256)
    out = np.asarray(m.apply(params, {"classes": changed, "roll": roll})["wavenet"])
    np.testing.assert_array_equal(out[:, :t], base[:, :t])  # outputs before t never see sample t
    assert not np.allclose(out[:, t], base[:, t])  # the output at t sees it
  assert wn.receptive_field(m.dilations) == 2 + 2 * 15
  # the receptive field, measured: the output at t = 63 sees samples 63 - 31 .. 63, not 63 - 32
  for back, sees in ((31, True), (32, False)):
    changed = q.at[:, 63 - back].set((q[:, 63 - back] + 100) % 256)
    out = np.asarray(m.apply(params, {"classes": changed, "roll": roll})["wavenet"])
    assert (not np.allclose(out[:, 63], base[:, 63])) == sees
  with pytest.raises(ValueError, match="aligned"):
    m.apply(params, {"classes": q})


@pytest.mark.parametrize("hop,upsample", [(0, "repeat"), (8, "repeat"), (8, "transposed")])
def test_cached_generation_draws_exactly_the_naive_samples(hop, upsample):
  m = _model(hop, upsample)
  rng = np.random.default_rng(2)
  roll = jnp.asarray(rng.random((3, 12, 128)) < 0.05, jnp.float32) if hop else None
  init_in = {"classes": jnp.zeros((3, 96), jnp.int32), **({"roll": roll} if hop else {})}
  params = _sharpen(m.init(jax.random.key(3), init_in))
  key = jax.random.key(4)
  fast = np.asarray(jax.jit(lambda p: wn.sample(m, p, key, 3, 96, roll=roll))(params))
  slow = np.asarray(jax.jit(lambda p: wn.sample_naive(m, p, key, 3, 96, roll=roll))(params))
  np.testing.assert_array_equal(fast, slow)
  assert len(np.unique(fast)) > 10  # not a constant: the draws depend on the network
  if hop:  # and on the roll
    other = np.asarray(wn.sample(m, params, key, 3, 96, roll=1.0 - roll))
    assert np.mean(other != fast) > 0.2


def test_the_waveform_loss_is_the_next_sample_cross_entropy():
  from mirjax.tasks.language_model import Waveform
  librosa = pytest.importorskip("librosa")
  rng = np.random.default_rng(5)
  audio = rng.uniform(-0.9, 0.9, (3, 40)).astype(np.float32)
  logits = rng.normal(size=(3, 40, 256)).astype(np.float32)
  mask = np.array([True, False, True])
  task = Waveform()
  got = float(task.losses({"wavenet": jnp.asarray(logits)}, {"audio": jnp.asarray(audio), "mask": jnp.asarray(mask)})["wavenet"])
  q = librosa.mu_compress(audio.astype(np.float64), mu=255, quantize=True) + 128
  z = logits.astype(np.float64)
  lse = np.log(np.sum(np.exp(z - z.max(-1, keepdims=True)), -1)) + z.max(-1)
  nll = lse[:, :-1] - np.take_along_axis(z[:, :-1], q[:, 1:, None], -1)[..., 0]
  np.testing.assert_allclose(got, nll[mask].mean(), rtol=1e-5)
  assert float(task.count({"audio": jnp.asarray(audio), "mask": jnp.asarray(mask)})) == 2 * 39
  assert task.summarize(np.array([got]))["bits_per_sample"] == pytest.approx(got / np.log(2))


def test_the_logistic_mixture_is_a_distribution_over_the_classes():
  """Summed over the 256 classes the probabilities are 1; one component's bin masses are
  scipy's logistic CDF differences, the end bins taking the tails."""
  stats = pytest.importorskip("scipy.stats")
  rng = np.random.default_rng(6)
  params = jnp.asarray(np.concatenate([rng.normal(size=(5, 4)), rng.uniform(-0.9, 0.9, (5, 4)),
                                       rng.uniform(-6, -1, (5, 4))], axis=1), jnp.float32)
  q = jnp.arange(256)
  logp = np.asarray(jax.vmap(lambda p: wn.logistic_mixture_log_prob(jnp.broadcast_to(p, (256, 12)), q))(params))
  np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=2e-4)
  one = np.array([0.0, 0.3, np.log(0.05)])  # one component: mean 0.3, scale 0.05
  y = 2 * np.arange(256) / 255 - 1
  cdf = stats.logistic.cdf(np.r_[y[:-1] + 1 / 255, np.inf], loc=0.3, scale=0.05)
  want = np.diff(np.r_[0.0, cdf])
  got = np.exp(np.asarray(wn.logistic_mixture_log_prob(jnp.broadcast_to(jnp.asarray(one, jnp.float32), (256, 3)), q)))
  np.testing.assert_allclose(got, want, atol=1e-6)  # float32 differences of sigmoids in the tails
  big = want > 1e-3
  np.testing.assert_allclose(got[big], want[big], rtol=1e-3)


def test_cached_generation_equals_naive_with_a_logistic_mixture():
  m = wn.WaveNet(n_outputs=wn.output_width("logistic_mixture", 4), dilations=wn.dilations(1, 4), residual=16,
                 gate=16, skip=32, hop=8)
  roll = jnp.asarray(np.random.default_rng(7).random((2, 10, 128)) < 0.05, jnp.float32)
  params = _sharpen(m.init(jax.random.key(8), {"classes": jnp.zeros((2, 80), jnp.int32), "roll": roll}), 2.0)
  key = jax.random.key(9)
  fast = np.asarray(wn.sample(m, params, key, 2, 80, roll=roll, output="logistic_mixture"))
  slow = np.asarray(wn.sample_naive(m, params, key, 2, 80, roll=roll, output="logistic_mixture"))
  np.testing.assert_array_equal(fast, slow)
  assert len(np.unique(fast)) > 5 and fast.min() >= 0 and fast.max() <= 255


def test_the_mixture_waveform_loss_is_the_negative_log_likelihood():
  from mirjax.tasks.language_model import Waveform
  task = Waveform(output="logistic_mixture", mixtures=3)
  assert task.n_outputs == 9
  rng = np.random.default_rng(10)
  audio = jnp.asarray(rng.uniform(-0.5, 0.5, (2, 12)), jnp.float32)
  out = jnp.asarray(rng.normal(size=(2, 12, 9)), jnp.float32)
  got = float(task.losses({"wavenet": out}, {"audio": audio})["wavenet"])
  q = mu_law_encode(audio)
  want = -np.mean(np.asarray(wn.logistic_mixture_log_prob(out[:, :-1], q[:, 1:])))
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_input_noise_replaces_that_share_of_the_inputs_in_training_only():
  rng = np.random.default_rng(3)
  q = jnp.asarray(rng.integers(0, 256, (2, 400)), jnp.int32)
  other = jnp.asarray(rng.integers(0, 256, (2, 400)), jnp.int32)
  plain = _model()
  params = plain.init(jax.random.key(0), {"classes": q})
  noisy = lambda p: wn.WaveNet(dilations=plain.dilations, residual=16, gate=16, skip=32, input_noise=p)  # noqa: E731
  run = lambda m, x, train: np.asarray(m.apply(params, {"classes": x}, train=train,  # noqa: E731
                                               rngs={"dropout": jax.random.key(7)})["wavenet"])
  # evaluation and generation see the clean inputs
  np.testing.assert_array_equal(run(noisy(0.5), q, False), run(plain, q, False))
  # everything replaced: the output no longer depends on the audio
  np.testing.assert_allclose(run(noisy(1.0), q, True), run(noisy(1.0), other, True), atol=1e-6)
  # a share p of the classes is drawn afresh (a drawn class equals the old one 1 time in 256)
  kept = np.asarray(q == noisy(0.25).apply(params, q, method=wn.WaveNet.corrupt, rngs={"dropout": jax.random.key(1)}))
  assert abs((1 - kept.mean()) - 0.25 * 255 / 256) < 0.04
