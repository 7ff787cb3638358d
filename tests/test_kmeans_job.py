"""The multiscale k-means job (configs/kmeans.py, mirjax/jobs/kmeans.py): features learned on
the smoke data and written as a feature dataset, the MLP tagger trained on them, resumption
without relearning, the trained workdir scored by the eval job, the comparison, and settings
that cannot work."""
import json
import os

import numpy as np
import pytest

from helpers import assert_reported_metrics_match, rescore_with_sklearn
from mirjax import config as config_lib
from mirjax.data import features as features_lib, pipeline
from mirjax.errors import ConfigError, DataError
from mirjax.jobs import compare, evaluate, kmeans


def _config(arg, data_dir):
  c = config_lib.from_file("kmeans", arg)
  c.data.data_dir = data_dir
  return c


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("kmeans"))
  c = _config("smoke", data_dir)
  return c, workdir, kmeans.run(c, workdir)


def test_features_are_written_as_a_dataset_with_their_tags(run, data_dir):
  c, workdir, results = run
  folder = os.path.join(workdir, "features")
  meta = json.load(open(os.path.join(folder, "features.json")))
  # 3 pyramid levels x windows of 1 and 2 frames x (mean, max) x k = 8 atoms
  assert meta["dim"] == results["feature_dim"] == 3 * 2 * 2 * 8
  assert set(meta["dictionaries"]) == {f"level {l}, width {w}" for l in range(3) for w in (1, 2)}
  assert all(0 < d["objective"] <= 1 for d in meta["dictionaries"].values())
  audio, info = pipeline.load(c.data)
  sources, finfo = features_lib.load_features(folder)
  assert finfo.feature_dim == meta["dim"] and finfo.tag_names == info.tag_names
  for split in ("train", "valid", "test"):
    with np.load(os.path.join(folder, f"features_{split}.npz")) as z:
      raw, tags = z["features"], z["tags"]
    assert raw.shape == (len(audio[split]), meta["dim"]) and np.isfinite(raw).all()
    np.testing.assert_array_equal(tags, np.stack([audio[split][i]["tags"] for i in range(len(audio[split]))]))
    # rectified codes pooled: non-negative, and not all alike
    assert raw.min() >= 0 and raw.std(0).max() > 0
  train = np.stack([sources["train"][i]["features"] for i in range(len(sources["train"]))])
  np.testing.assert_allclose(train.mean(0), 0, atol=1e-4)  # standardised with the training split's statistics


def test_the_mlp_tagger_trains_on_them_and_reports_tagging_metrics(run, data_dir):
  _, workdir, results = run
  assert results["backend"] == "mlp hidden=32 input_dim=96" and results["steps"] == 12
  # the test metrics it reports are scikit-learn's on the selected checkpoint's predictions
  assert_reported_metrics_match(results, rescore_with_sklearn(workdir, data_dir))
  assert results["dataset"].startswith("features/embedded/smoke")
  assert results["feature_learning_s"] > 0 and results["wall_time_s"] > results["train_wall_time_s"]
  assert os.path.getsize(os.path.join(workdir, "dictionary.png")) > 3000
  assert os.path.isdir(os.path.join(workdir, "tensorboard"))


def test_a_second_run_reuses_dictionaries_and_features(run):
  c, workdir, first = run
  folder = os.path.join(workdir, "features")
  stamps = {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".npz")}
  again = kmeans.run(c, workdir)
  assert again["feature_learning_s"] == 0.0
  assert {f: os.path.getmtime(os.path.join(folder, f)) for f in stamps} == stamps
  assert again["test/roc_auc"] == pytest.approx(first["test/roc_auc"], abs=1e-6)


def test_the_trained_workdir_is_scored_by_the_eval_job(run, tmp_path):
  _, workdir, results = run
  c = config_lib.from_file("eval")
  c.trained = workdir
  out = evaluate.evaluate_trained(c, str(tmp_path / "eval"))
  assert out["metrics"]["test"]["roc_auc"] == pytest.approx(results["test/roc_auc"], abs=1e-5)


def test_the_embed_job_exports_the_mlp_hidden_layer(run, tmp_path):
  from mirjax.jobs import embed
  _, workdir, _ = run
  c = config_lib.from_file("embed")
  c.trained, c.layer = workdir, "embedding"
  embed.embed(c, str(tmp_path / "embed"))
  with np.load(tmp_path / "embed" / "embeddings_test.npz") as z:
    assert z["embeddings"].shape == (8, 32) and z["labels"].shape[0] == 8


def test_tagging_audio_files_with_it_is_refused_clearly(run):
  from mirjax.tag import Tagger
  with pytest.raises(ConfigError, match="reads summary features"):
    Tagger(run[1])


def test_the_comparison_tabulates_every_variant(data_dir, tmp_path):
  c = _config("smoke,compare", data_dir)
  assert len(c.compare.variants) == 7 and "pca_laplacian_all" in c.compare.variants
  c.compare.variants = ("gaussian_0", "pca_laplacian_all")
  c.compare.overrides.gaussian_0.kmeans.minibatch_size = 64  # the mini-batch learner on the way
  c.train.num_steps = 2
  table = compare.compare(c, str(tmp_path / "cmp"))
  assert "| gaussian_0 |" in table and "| pca_laplacian_all |" in table
  res = json.load(open(tmp_path / "cmp" / "gaussian_0" / "seed0" / "results.json"))
  assert res["feature_dim"] == 2 * 2 * 8 and res["dataset"].endswith("gaussian/k8")  # level 0 only
  assert all(0 < v <= 1 for v in res["kmeans_objective"].values())
  # no k-means: the whitened windows pooled, 16 and 32 dimensions (1 and 2 frames) per level
  res = json.load(open(tmp_path / "cmp" / "pca_laplacian_all" / "seed0" / "results.json"))
  assert res["feature_dim"] == 3 * 2 * (16 + 32)
  assert all(v is None for v in res["kmeans_objective"].values())  # NaN is written as null


def test_settings_that_cannot_work_are_refused(data_dir, tmp_path):
  for arg, match in (("smoke,wavelet", "unknown"), ("smoke,gaussian,laplacian", "one representation"),
                     ("smoke,mtat", "choose one"), ("smoke,all,scale=1", "either")):
    with pytest.raises(ConfigError, match=match):
      _config(arg, data_dir)
  c = _config("smoke,scale=7", data_dir)
  with pytest.raises(ConfigError, match=r"kmeans.scales='7'"):
    kmeans.check(c)
  c = _config("smoke", data_dir)
  c.kmeans.encoder = "sparse"
  with pytest.raises(ConfigError, match="encoder"):
    kmeans.check(c)
  with pytest.raises(DataError, match="features.json"):
    features_lib.load_features(str(tmp_path))
