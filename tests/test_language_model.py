"""The LSTM language model over event tokens: its loss against a direct computation, its
step-by-step form against the whole sequence, and a train-job run on 8 devices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax import models
from mirjax.data import symbolic
from mirjax.data.info import Info
from mirjax.tasks.language_model import LanguageModel


def _batch(rng, b=4, t=9, vocab=symbolic.VOCAB):
  tokens = rng.integers(0, symbolic.BOS, (b, t)).astype(np.int32)
  tokens[1, 5:] = symbolic.PAD  # a piece's last window
  return {"tokens": jnp.asarray(tokens), "mask": jnp.asarray([True, True, True, False])}


def test_the_loss_is_the_mean_next_token_cross_entropy_over_real_targets():
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  logits = rng.normal(size=(4, 9, symbolic.VOCAB)).astype(np.float32)
  task = LanguageModel(symbolic.VOCAB)
  got = float(task.losses({"lm": jnp.asarray(logits)}, batch)["lm"])
  toks = np.asarray(batch["tokens"])
  terms = []
  for b in range(3):  # example 3 is padding
    for t in range(8):
      if toks[b, t + 1] != symbolic.PAD:
        z = logits[b, t].astype(np.float64)
        terms.append(np.log(np.sum(np.exp(z - z.max()))) + z.max() - z[toks[b, t + 1]])
  np.testing.assert_allclose(got, np.mean(terms), rtol=1e-5)
  assert float(task.count(batch)) == len(terms) == 8 + 4 + 8
  m = task.summarize(np.array([got]))
  np.testing.assert_allclose([m["perplexity"], m["bits_per_token"]], [np.exp(got), got / np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("styles", [0, 3])
def test_the_step_by_step_model_gives_the_whole_sequence_logits(styles):
  cfg = models.lstm_config(width=16, layers=2, dropout=0.0)
  with cfg.unlocked():
    cfg.condition_on_style, cfg.styles = bool(styles), styles
  model = models.build(cfg, n_outputs=symbolic.VOCAB, branches=("lm",))
  rng = np.random.default_rng(1)
  inputs = {"tokens": jnp.asarray(rng.integers(0, symbolic.VOCAB, (2, 7)), jnp.int32),
            "style": jnp.asarray([0, 2], jnp.int32)}
  params = model.init(jax.random.key(0), models.example_inputs(cfg, 0))
  whole = model.apply(params, inputs)["lm"]
  carries = model.apply(params, 2, method="initial_carries")
  steps = []
  for t in range(7):
    logits, carries = model.apply(params, {"tokens": inputs["tokens"][:, t:t + 1], "style": inputs["style"]},
                                  carries, method="step")
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), whole, rtol=1e-5, atol=1e-5)
  if styles:  # the style changes the prediction
    other = model.apply(params, {**inputs, "style": jnp.asarray([1, 1], jnp.int32)})["lm"]
    assert not np.allclose(other, whole)


def test_the_lstm_needs_a_token_dataset():
  from mirjax import system
  from mirjax.errors import ConfigError
  import importlib.util
  spec = importlib.util.spec_from_file_location("generate_cfg", "configs/generate.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config("smoke")
  with pytest.raises(ConfigError, match="notes"):
    system.resolve_inputs(c, Info(name="embedded/smoke", sample_rate=16000))
  c2 = system.resolve_inputs(mod.get_config("style,smoke"), Info(name="notes", sample_rate=0, vocab_size=391,
                                                                  class_names=("a", "b", "c", "d")))
  assert c2.model.styles == 4


@pytest.mark.parametrize("words", ["style,smoke"])  # unconditioned: tests/test_generate.py trains it
def test_the_train_job_trains_the_lstm_on_8_devices(tmp_path, data_dir, words):
  import importlib.util
  from mirjax.jobs import train
  spec = importlib.util.spec_from_file_location("generate_cfg", "configs/generate.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config(words)
  c.data.data_dir = data_dir
  results = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert results["devices"] == 8
  for split in ("valid", "test"):
    ppl = results[f"{split}/perplexity"]
    assert np.isfinite(ppl) and 1.0 < ppl < symbolic.VOCAB  # below chance after 12 steps at lr 2e-3
    np.testing.assert_allclose(results[f"{split}/bits_per_token"], np.log2(ppl), rtol=1e-5)


def test_sampling_filters_keep_the_tokens_they_should():
  from mirjax.models.lstm import filter_logits
  logits = jnp.log(jnp.asarray([[0.5, 0.2, 0.15, 0.1, 0.05]]))
  keep = lambda z: np.isfinite(np.asarray(z))[0]  # noqa: E731
  np.testing.assert_array_equal(keep(filter_logits(logits, top_k=2)), [1, 1, 0, 0, 0])
  np.testing.assert_array_equal(keep(filter_logits(logits, top_p=0.7)), [1, 1, 0, 0, 0])  # 0.5 + 0.2 reaches 0.7
  np.testing.assert_array_equal(keep(filter_logits(logits, top_p=0.71)), [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(keep(filter_logits(logits, top_p=0.01)), [1, 0, 0, 0, 0])
  np.testing.assert_allclose(jax.nn.softmax(filter_logits(logits, temperature=2.0)),
                             jax.nn.softmax(logits / 2.0), rtol=1e-6)
  # draws follow the filtered distribution: nucleus 0.9 -> tokens 0-3 renormalised
  z = filter_logits(jnp.broadcast_to(logits, (20000, 5)), top_p=0.9)
  draws = np.asarray(jax.random.categorical(jax.random.key(0), z))
  freq = np.bincount(draws, minlength=5) / draws.size
  np.testing.assert_allclose(freq, [0.5 / 0.95, 0.2 / 0.95, 0.15 / 0.95, 0.1 / 0.95, 0.0], atol=0.012)


def test_greedy_sampling_follows_the_model_and_stops_at_eos():
  from mirjax.models.lstm import sample_tokens
  cfg = models.lstm_config(width=16, layers=2, dropout=0.0)
  model = models.build(cfg, n_outputs=symbolic.VOCAB, branches=("lm",))
  params = jax.tree.map(lambda p: 3.0 * p, model.init(jax.random.key(0), models.example_inputs(cfg, 0)))
  toks = np.asarray(sample_tokens(model, params, jax.random.key(1), 2, 12, top_k=1, never=(symbolic.BOS,)))
  seq = np.concatenate([np.full((2, 1), symbolic.BOS), toks], 1)
  logits = np.array(model.apply(params, {"tokens": jnp.asarray(seq[:, :-1], jnp.int32)})["lm"])
  logits[..., symbolic.BOS] = -np.inf
  for b in range(2):
    for t in range(12):
      if t and toks[b, t - 1] in (symbolic.EOS, symbolic.PAD):
        assert toks[b, t] == symbolic.PAD  # after EOS only PAD
      else:
        assert toks[b, t] == np.argmax(logits[b, t])  # greedy: the model's most likely token
  # a model sure of EOS ends at once, then pads
  sure = jax.tree.map(lambda p: p, params)
  sure["params"]["head"]["bias"] = sure["params"]["head"]["bias"].at[symbolic.EOS].set(1e4)
  toks = np.asarray(sample_tokens(model, sure, jax.random.key(1), 2, 5))
  np.testing.assert_array_equal(toks, [[symbolic.EOS] + [symbolic.PAD] * 4] * 2)
  # with EOS banned, no sequence ends
  toks = np.asarray(sample_tokens(model, params, jax.random.key(2), 3, 20, never=(symbolic.BOS, symbolic.EOS,
                                                                                   symbolic.PAD)))
  assert not np.isin(toks, [symbolic.BOS, symbolic.EOS, symbolic.PAD]).any()
