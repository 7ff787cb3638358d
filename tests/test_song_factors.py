"""The content CNN (van den Oord et al. 2013), song-factor datasets and the regression
task's weighted prediction error."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax import config as base, models
from mirjax.data import pipeline, song_factors
from mirjax.errors import ConfigError, DataError
from mirjax.models.content_cnn import ContentCNN, global_temporal_pool
from mirjax.tasks.regression import Regression, weighted_prediction_error


def test_global_temporal_pool_is_mean_max_and_l2_over_frames():
  x = np.random.default_rng(0).normal(size=(3, 7, 5)).astype(np.float32)
  got = np.asarray(global_temporal_pool(jnp.asarray(x)))
  want = np.concatenate([x.mean(1), x.max(1), np.sqrt((x ** 2).sum(1))], -1)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  grad = jax.grad(lambda v: global_temporal_pool(v).sum())(jnp.zeros((1, 4, 2)))
  assert np.all(np.isfinite(grad))  # an all-zero channel (dead ReLUs) has a finite gradient


def test_content_cnn_outputs_and_sown_layers():
  model = ContentCNN(n_outputs=6, channels=(8, 8, 16), pools=(4, 2), dense=(12,))
  x = jnp.ones((2, 94, 10))
  variables = model.init(jax.random.PRNGKey(0), x)
  out, sown = model.apply(variables, x, mutable=["intermediates"])
  assert out.shape == (2, 6)
  layers = sown["intermediates"]
  assert set(layers) == {"block0", "block1", "block2", "pooled", "embedding"}
  assert layers["block0"][0].shape == (2, (94 - 3) // 4, 8)  # VALID conv of 4, pooled by 4
  assert layers["pooled"][0].shape == (2, 3 * 16) and layers["embedding"][0].shape == (2, 12)
  with pytest.raises(ConfigError, match="one entry fewer"):
    ContentCNN(n_outputs=6, channels=(8, 8), pools=(4, 2)).init(jax.random.PRNGKey(0), x)
  with pytest.raises(ConfigError, match="crop_seconds"):
    ContentCNN(n_outputs=6).init(jax.random.PRNGKey(0), jnp.ones((2, 20, 10)))


def test_weighted_prediction_error_terms_equal_the_sum_over_users():
  rng = np.random.default_rng(1)
  n_users, n_songs, k = 30, 6, 4
  X = rng.normal(size=(n_users, k))
  counts = rng.poisson(0.5, size=(n_users, n_songs)) * (rng.random((n_users, n_songs)) < 0.4)
  users, songs = np.nonzero(counts)
  conf = 1.0 + 2.0 * counts[users, songs]
  terms = song_factors.wpe_terms(X, users, songs, conf, n_songs)
  y = rng.normal(size=(n_songs, k))
  P, C = (counts > 0).astype(float), 1.0 + 2.0 * counts
  direct = np.sum(C * (P - X @ y.T) ** 2, axis=0) / n_users  # per song, over every user
  got = weighted_prediction_error(jnp.asarray(y, jnp.float32), terms["wpe_gram"], terms["wpe_b"], terms["wpe_c"])
  np.testing.assert_allclose(np.asarray(got), direct, rtol=1e-4, atol=1e-5)
  task = Regression(k, loss="wpe")
  assert task.extra_targets == ("wpe_gram", "wpe_b", "wpe_c")
  losses = task.losses({"regression": jnp.asarray(y, jnp.float32)},
                       {"factors": jnp.zeros((n_songs, k)), **{f: jnp.asarray(v) for f, v in terms.items()}})
  np.testing.assert_allclose(float(losses["regression"]), direct.mean(), rtol=1e-4)
  with pytest.raises(ConfigError, match="wpe"):
    Regression(k, loss="mae")


def _factor_folder(tmp_path, data_cfg, sources, k=3, wpe=False):
  rng = np.random.default_rng(0)
  splits = {}
  for s in ("train", "valid"):
    ids = [f"{s}/{i}" for i in range(len(sources[s]))][::-1]  # any order of any split's clips
    fields = {"ids": ids, "factors": rng.normal(size=(len(ids), k))}
    if wpe:
      X = rng.normal(size=(20, k))
      users, songs = np.arange(20) % 7, np.arange(20) % len(ids)
      fields.update(song_factors.wpe_terms(X, users, songs, np.full(20, 3.0), len(ids)))
    splits[s] = fields
  folder = str(tmp_path / "factors")
  song_factors.write(folder, data_cfg.to_dict(), splits, name="test")
  return folder, splits


def _smoke_config():
  c = base.base(models.content_cnn_config(n_mels=16))
  base.smoke(c)
  c.data.crop_seconds = 3.0
  c.task.name, c.task.branches = "regression", ("regression",)
  c.optim.learning_rate = 1e-3
  return c


def test_song_factor_dataset_pairs_each_clip_with_its_factors(tmp_path):
  c = _smoke_config()
  audio, _ = pipeline.load(c.data)
  folder, splits = _factor_folder(tmp_path, c.data, audio)
  c.data.name, c.data.manual_dir = "song_factors", folder
  sources, info = pipeline.load(c.data)
  assert info.target_dim == 3 and info.num_examples == {"train": len(audio["train"]), "valid": len(audio["valid"])}
  last = len(audio["valid"]) - 1
  np.testing.assert_array_equal(sources["valid"][0]["audio"], audio["valid"][last]["audio"])
  np.testing.assert_allclose(sources["valid"][0]["factors"], splits["valid"]["factors"][0], rtol=1e-6)
  c.data.manual_dir = str(tmp_path / "nothing")
  with pytest.raises(DataError, match="song-factor folder"):
    pipeline.load(c.data)
  song_factors.write(str(tmp_path / "bad"), base.base(models.content_cnn_config()).data.to_dict(),
                     {"train": {"ids": ["train/100000"], "factors": np.zeros((1, 3))}})
  c.data.manual_dir = str(tmp_path / "bad")
  with pytest.raises(DataError, match="train/100000"):
    pipeline.load(c.data)


def test_a_folder_digest_changes_with_its_factors_only(tmp_path):
  base_cfg = {"name": "embedded", "config": "smoke"}
  split = {"train": {"ids": ["train/0", "train/1"], "factors": np.eye(2)}}
  song_factors.write(str(tmp_path / "a"), base_cfg, split)
  first = song_factors.digest(str(tmp_path / "a"))
  song_factors.write(str(tmp_path / "a"), base_cfg, split)  # written again: same contents, same digest
  assert song_factors.digest(str(tmp_path / "a")) == first
  song_factors.write(str(tmp_path / "a"), base_cfg, {"train": {"ids": ["train/0", "train/1"], "factors": 2 * np.eye(2)}})
  assert song_factors.digest(str(tmp_path / "a")) != first  # new targets: runs on them start anew


def test_train_job_regresses_factors_with_the_weighted_prediction_error(tmp_path):
  """The content CNN trains on 8 devices from song factors with task.loss='wpe'; the same
  loss on a folder without its terms stops with a clear error."""
  from mirjax.jobs import train  # pylint: disable=import-outside-toplevel
  c = _smoke_config()
  audio, _ = pipeline.load(c.data)
  folder, _ = _factor_folder(tmp_path, c.data, audio, wpe=True)
  c.data.name, c.data.manual_dir = "song_factors", folder
  c.task.loss = "wpe"
  c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 4, 4, 4
  results = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert results["devices"] == 8 and np.isfinite(results["valid/mse"]) and "valid/r2" in results
  plain, _ = _factor_folder(tmp_path / "plain", _smoke_config().data, audio)
  c.data.manual_dir = plain
  with pytest.raises(DataError, match="wpe_gram"):
    train.train_and_evaluate(c, str(tmp_path / "run_plain"))
  assert not os.path.exists(os.path.join(tmp_path, "run_plain", "best"))
