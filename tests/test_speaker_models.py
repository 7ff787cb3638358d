"""Speaker verification pieces: margin losses and their warm-up (models/margin.py), and the
audio-visual speaker models (models/speaker.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax.errors import ConfigError
from mirjax.models import margin, speaker


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


def test_attentive_statistics_are_the_weighted_mean_and_deviation():
  rng = np.random.default_rng(4)
  h = rng.normal(size=(2, 7, 3)).astype(np.float32)
  a = rng.uniform(size=(2, 7)).astype(np.float32)
  a /= a.sum(axis=1, keepdims=True)
  mean = np.einsum("bt,btd->bd", a, h)
  std = np.sqrt(np.einsum("bt,btd->bd", a, (h - mean[:, None]) ** 2))  # the centred form
  np.testing.assert_allclose(speaker.attentive_statistics(jnp.asarray(h), jnp.asarray(a)),
                             np.concatenate([mean, std], axis=1), rtol=1e-4, atol=1e-5)
  per_channel = np.broadcast_to(a[..., None], h.shape)  # (batch, time, dim) weights, same values
  np.testing.assert_allclose(speaker.attentive_statistics(jnp.asarray(h), jnp.asarray(per_channel)),
                             np.concatenate([mean, std], axis=1), rtol=1e-4, atol=1e-5)


def test_attentive_pooling_scores_frames_with_one_tanh_layer_and_a_softmax():
  h = np.random.default_rng(5).normal(size=(2, 6, 4)).astype(np.float32)
  pool = speaker.AttentiveStatsPooling(hidden=3)
  variables = pool.init(jax.random.key(1), h)
  p = jax.tree.map(np.asarray, variables["params"])
  e = np.tanh(h @ p["hidden"]["kernel"] + p["hidden"]["bias"]) @ p["score"]["kernel"] + p["score"]["bias"]
  a = np.exp(e[..., 0] - e[..., 0].max(axis=1, keepdims=True))
  a /= a.sum(axis=1, keepdims=True)  # e_t = v^T tanh(W h_t + b) + k, softmax over t
  out, state = pool.apply(variables, h, mutable=["intermediates"])
  np.testing.assert_allclose(state["intermediates"]["attention"][0], a, rtol=1e-5)
  np.testing.assert_allclose(out, speaker.attentive_statistics(jnp.asarray(h), jnp.asarray(a)),
                             rtol=1e-5, atol=1e-6)
  mean_only = speaker.AttentiveStatsPooling(hidden=3, stats=False).apply(variables, h)
  np.testing.assert_allclose(mean_only, np.einsum("bt,btd->bd", a, h), rtol=1e-5, atol=1e-6)


def _tiny_config(variant, **fields):
  """A speaker config small enough for tests: 16 mel bands, two stages of width 4 and 8."""
  c = speaker.speaker_config(variant)
  c.audio.frontend.n_mels = 16
  c.audio.widths, c.audio.blocks = (4, 8), (1, 1)
  c.face.widths, c.face.blocks = (4, 8), (1, 1)
  c.embed_dim, c.audio.attention_hidden, c.face.attention_hidden = 8, 4, 4
  for k, v in fields.items():
    section, _, key = k.rpartition(".")
    setattr(c[section] if section else c, key, v)
  return c


N_CLASSES = 5


def _inputs(batch=2, samples=1600, n_frames=2, size=16):
  rng = np.random.default_rng(6)
  return {"audio": jnp.asarray(rng.normal(size=(batch, samples)), jnp.float32),
          "frames": jnp.asarray(rng.uniform(size=(batch, n_frames, size, size, 3)), jnp.float32)}


@pytest.mark.parametrize("variant,branches,fields,embeddings", [
    ("audio", ("audio",), {}, {"audio": 8}),
    ("visual", ("visual",), {"face.frame_pool": "attentive"}, {"visual": 8}),
    ("fusion", ("joint", "audio", "visual"), {}, {"audio": 8, "visual": 8, "joint": 16}),
    ("multiview", ("audio", "visual", "shared"), {}, {"audio": 8, "visual": 8}),
])
def test_each_variant_gives_cosines_per_branch_and_its_embeddings_under_jit(
    variant, branches, fields, embeddings):
  model = speaker.build(_tiny_config(variant, branches=branches, **fields), N_CLASSES)
  x = _inputs()
  variables = model.init(jax.random.key(0), x)
  out, state = jax.jit(lambda v, x: model.apply(v, x, mutable=["intermediates"]))(variables, x)
  assert set(out) == set(branches) | {speaker.EMBEDDINGS}
  for b in branches:
    assert out[b].shape == (2, N_CLASSES)
    assert np.all(np.abs(np.asarray(out[b])) <= 1.0 + 1e-5)  # cosines
  got = {k: v.shape for k, v in out[speaker.EMBEDDINGS].items()}
  assert got == {k: (2, d) for k, d in embeddings.items()}
  sown = state["intermediates"]
  for modality, encoder in (("audio", "audio_encoder"), ("visual", "face_encoder")):
    if modality in embeddings:  # what the "embed" job finds as "<encoder>/embedding"
      np.testing.assert_allclose(sown[encoder]["embedding"][0], out[speaker.EMBEDDINGS][modality], rtol=1e-6)
  if variant == "multiview":
    np.testing.assert_allclose(out["shared"], (out["audio"] + out["visual"]) / 2, rtol=1e-6)
  else:
    heads = {k for k in variables["params"] if k.startswith("head_")}
    assert heads == {f"head_{b}" for b in branches}  # one classifier per branch
  if variant == "fusion":
    emb = out[speaker.EMBEDDINGS]
    np.testing.assert_array_equal(emb["joint"], np.concatenate([emb["audio"], emb["visual"]], axis=1))


def _leaves(tree):
  return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def test_multiview_classifier_is_one_parameter_trained_by_both_modalities():
  model = speaker.build(_tiny_config("multiview"), N_CLASSES)
  x = _inputs()
  variables = model.init(jax.random.key(0), x)
  params = variables["params"]
  classifier = [k for k in _leaves(params) if "classifier" in k or "head" in k]
  assert classifier == ["['classifier']['weight']"]
  assert params["classifier"]["weight"].shape == (N_CLASSES, 8)
  labels = jnp.array([1, 3])

  def loss(p, weights):  # weights of the (audio, visual) branch losses
    out = model.apply({**variables, "params": p}, x)
    per = {b: margin.aam_softmax_loss(out[b], labels, 0.2, 16.0).mean() for b in ("audio", "visual")}
    return weights[0] * per["audio"] + weights[1] * per["visual"]

  grad = jax.jit(jax.grad(loss))
  g_audio, g_visual, g_both = (grad(params, jnp.array(w)) for w in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]))
  ga, gv, gb = (np.asarray(g["classifier"]["weight"]) for g in (g_audio, g_visual, g_both))
  assert np.abs(ga).max() > 1e-4 and np.abs(gv).max() > 1e-4  # each modality reaches the weight
  assert not np.allclose(ga, gv)
  np.testing.assert_allclose(ga + gv, gb, rtol=1e-4, atol=1e-7)  # and their gradients add up
  # each loss trains its own encoder and leaves the other alone
  for g, own, other in ((g_audio, "audio_encoder", "face_encoder"),
                        (g_visual, "face_encoder", "audio_encoder")):
    assert max(np.abs(v).max() for v in _leaves(g[own]).values()) > 1e-6
    assert all(np.all(v == 0) for v in _leaves(g[other]).values())


def test_train_mode_updates_batch_statistics():
  model = speaker.build(_tiny_config("fusion"), N_CLASSES)
  x = _inputs()
  variables = model.init(jax.random.key(0), x)
  out, new = model.apply(variables, x, train=True, mutable=["batch_stats"])
  before, after = _leaves(variables["batch_stats"]), _leaves(new["batch_stats"])
  assert before.keys() == after.keys()
  for encoder in ("audio_encoder", "face_encoder"):
    assert any(not np.allclose(before[k], after[k]) for k in before if encoder in k)
  assert out["joint"].shape == (2, N_CLASSES)


def test_config_is_locked_and_mistakes_are_refused():
  c = speaker.speaker_config("fusion", size="resnet34")
  assert c.audio.widths == (32, 64, 128, 256) and c.audio.blocks == (3, 4, 6, 3)
  with pytest.raises(AttributeError):
    c.not_a_field = 1
  with pytest.raises(ConfigError, match="branches among"):
    speaker.build(_tiny_config("multiview", branches=("joint",)), N_CLASSES)
  with pytest.raises(ConfigError, match="frame_pool"):
    speaker.build(_tiny_config("visual", **{"face.frame_pool": "max"}), N_CLASSES)
  with pytest.raises(ConfigError, match="loss.kind"):
    speaker.build(_tiny_config("audio", **{"loss.kind": "softmax"}), N_CLASSES)
  with pytest.raises(ConfigError, match="unknown speaker model"):
    speaker.speaker_config("lips")
  model = speaker.build(_tiny_config("multiview"), N_CLASSES)
  with pytest.raises(ValueError, match="reads inputs"):
    model.init(jax.random.key(0), {"audio": _inputs()["audio"]})
