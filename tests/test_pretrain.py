"""Transfer learning by supervised pre-training (configs/transfer.py, mirjax/jobs/pretrain.py):
source factors, source networks, the probes against untrained, k-means and hand-crafted
features, and the table of layers chosen on validation."""
import json
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from mirjax import config as config_lib, sharding
from mirjax.data import pipeline, song_factors
from mirjax.errors import ConfigError
from mirjax.jobs import pretrain


def _config(data_dir):
  c = config_lib.from_file("transfer", "smoke")
  c.source.data.data_dir = data_dir
  c.pretrain.seeds = (0,)
  return c


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("pretrain"))
  c = _config(data_dir)
  return c, workdir, pretrain.run(c, workdir)


def test_the_table_compares_every_kind_of_features_on_the_target_task(run):
  c, workdir, results = run
  kinds = {t["features"] for t in results["table"]}
  assert kinds == {"pre-trained: tag_factors", "pre-trained: listening_factors", "pre-trained: tags",
                   "logmel+content_cnn untrained", pretrain.KMEANS, "hand-crafted: logmel", "hand-crafted: mfcc"}
  for t in results["table"]:
    assert t["task"] == "tempo" and t["metric"] == "accuracy" and 0.0 <= t["test"] <= 1.0
  with open(os.path.join(workdir, "pretrain.md")) as f:
    assert f.read().count("\n") == 2 + len(results["table"])
  with open(os.path.join(workdir, "transfer", "transfer.json")) as f:
    rows = json.load(f)["rows"]
  trained = [r for r in rows if " trained on " in r["model"]]
  assert {r["seed"] for r in trained} == {0}  # each source network's rows carry its seed


def test_source_networks_see_only_training_clips(run, data_dir):
  c, workdir, results = run
  seen = {}
  for source in c.pretrain.sources:
    folder = os.path.join(workdir, "factors", source)
    cfg = pretrain.source_config(c, source, 0, folder)
    assert cfg.task.name == ("tagging" if source == "tags" else "regression")
    sources, info = pipeline.load(cfg.data)
    assert set(sources) == {"train", "valid"}
    with np.load(os.path.join(folder, "factors.npz")) as z:
      ids = {s: set(z[f"{s}_ids"]) for s in ("train", "valid")}
    assert all(i.startswith("train/") for s in ids.values() for i in s) and not ids["train"] & ids["valid"]
    seen[source] = ids
    run_dir = f"{source}_seed0_{song_factors.digest(folder)}"  # named by its targets
    assert os.path.exists(os.path.join(workdir, "sources", run_dir, "results.json"))
  assert all(v == seen["tags"] for v in seen.values())  # every source: the same clips, the same split
  assert results["factors"]["tag_factors"]["dim"] == c.pretrain.tag_factors


def test_tag_factors_reconstruct_the_tags(data_dir):
  c = _config(data_dir)
  songs, splits = pretrain.source_songs(c)
  clips = np.concatenate(list(splits.values()))
  c.pretrain.tag_factors, c.pretrain.sweeps = 12, 10
  y = pretrain.source_factors(c, "tag_factors", songs, clips, sharding.make_mesh(1))
  others = np.setdiff1d(np.arange(len(y)), clips)
  assert np.all(y[others] == 0)  # a target clip's tags are never used
  tag_cols = [i for i, n in enumerate(songs.names) if n.startswith("tag:")]
  truth = songs.values[clips][:, tag_cols]
  # the clips' factors place each clip near its tags: its tags rank above the others
  X, *_ = np.linalg.lstsq(y[clips], truth, rcond=None)
  assert skm.roc_auc_score(truth.ravel(), (y[clips] @ X).ravel()) > 0.9


def test_layers_are_chosen_on_validation_per_seed():
  rows = [{"task": "t", "metric": "accuracy", "model": "m trained on x/y/tags", "probe": "linear", "seed": s,
           "layer": layer, "valid": v, "test": t}
          for s, layer, v, t in [(0, "a", 0.9, 0.5), (0, "b", 0.8, 0.9), (1, "a", 0.1, 0.2), (1, "b", 0.7, 0.7)]]
  (row,) = pretrain.selected_table(rows)
  assert row["features"] == "pre-trained: tags" and row["seeds"] == 2 and row["layers"] == ["a", "b"]
  assert row["test"] == pytest.approx(0.6) and row["test_std"] == pytest.approx(0.1)


def test_settings_that_cannot_work_say_so(data_dir):
  c = _config(data_dir)
  c.pretrain.sources = ("tags", "genre")
  with pytest.raises(ConfigError, match="genre"):
    pretrain.check(c)
  with pytest.raises(ConfigError, match="unknown"):
    config_lib.from_file("transfer", "gtzn")
  assert "gtzan" in config_lib.from_file("transfer", "gtzan").transfer.tasks
