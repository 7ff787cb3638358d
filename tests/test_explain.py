"""Explainability (configs/explain.py): source models of every architecture train, and the
similarity job writes the CKA of every layer of the trained and untrained models against
the hand-crafted feature sets, as CSV, JSON and heatmaps."""
import csv
import json
import os

import numpy as np
import pytest

from mirjax import config as config_lib
from mirjax.errors import ConfigError
from mirjax.jobs import similarity, train, transfer


def _config(arg):
  return config_lib.from_file("explain", arg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("explain_src"))
  c = _config("smoke")
  c.data.data_dir = data_dir
  train.train_and_evaluate(c, workdir)
  return workdir


def test_every_architecture_and_task_makes_a_training_config():
  for arch in ("shortchunk", "fcn", "samplecnn"):
    for task in ("tags", "tempo"):
      c = _config(f"{arch},{task},smoke")
      assert c.task.name == ("tagging" if task == "tags" else "classification")
      assert c.data.label == ("" if task == "tags" else task)
  assert _config("fcn").model.backend.name == "fcn"
  with pytest.raises(ConfigError, match="one architecture"):
    _config("fcn,samplecnn")
  with pytest.raises(ConfigError, match="reads its models from trained workdirs"):
    _config("similarity,fcn")


def test_similarity_writes_cka_of_every_layer_trained_and_untrained(trained, data_dir, tmp_path):
  c = _config("similarity,smoke")
  c.trained, c.data.data_dir = trained, data_dir
  out = similarity.similarity(c, str(tmp_path))
  layers = [f"backend/block{i}" for i in range(5)] + ["backend/embedding"]
  assert out["layers"] == layers and out["estimator"] == "exact"
  assert out["models"] == ["trained (step 12)", "untrained (seed 0)", "untrained (seed 1)"]
  for kernel in ("linear", "rbf"):
    with open(tmp_path / f"cka_{kernel}.csv") as f:
      rows = list(csv.reader(f))
    assert rows[0] == ["model", "layer", "scattering1", "scattering2", "mfcc", "logmel"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(m, l) for m in out["models"] for l in layers]
    values = np.array([[float(v) for v in r[2:]] for r in rows[1:]]).reshape(3, len(layers), 4)
    assert ((values >= 0) & (values <= 1 + 1e-5)).all() and values.std() > 0.01
    assert not np.allclose(values[0], values[1], atol=1e-3)  # trained != untrained
    np.testing.assert_allclose(json.load(open(tmp_path / "similarity.json"))["untrained_mean"][kernel],
                               values[1:].mean(0), atol=1e-4)
    assert os.path.getsize(tmp_path / f"cka_{kernel}.png") > 5000


def test_similarity_settings_that_cannot_work_are_refused(trained, tmp_path):
  c = _config("similarity,smoke")
  c.trained = trained
  for field, value, message in (("splits", ("valid", "test"), "reads one split"),
                                ("kernels", ("cosine",), "choose among"),
                                ("features", ("chroma",), "choose among"),
                                ("cka_batch", 2, "at least 8 clips")):
    bad = _config("similarity,smoke")
    bad.trained, bad[field] = trained, value
    with pytest.raises(ConfigError, match=message):
      similarity.check(bad, str(tmp_path))


def test_transfer_probes_every_layer_untrained_and_hand_crafted_on_every_task(trained, data_dir, tmp_path):
  c = _config("transfer,smoke")
  c.sources, c.data.data_dir, c.probes = trained, data_dir, ("linear",)
  out = transfer.transfer(c, str(tmp_path))
  layers = [f"backend/block{i}" for i in range(5)] + ["backend/embedding"]
  rows = out["rows"]
  assert len(rows) == 2 * (3 * len(layers) + 4)  # tasks x (trained + 2 untrained seeds) x layers + 4 feature sets
  for task, metric in (("tags", "macro ROC-AUC"), ("tempo", "accuracy")):
    mine = [r for r in rows if r["task"] == task]
    assert {r["metric"] for r in mine} == {metric}
    assert all(0.0 <= r["test"] <= 1.0 and 0.0 <= r["valid"] <= 1.0 for r in mine)
    assert {r["layer"] for r in mine if r["model"] == "hand-crafted"} == {"scattering1", "scattering2",
                                                                           "mfcc", "logmel"}
    assert sorted(r["seed"] for r in mine if r["model"].endswith("untrained") and r["layer"] == layers[0]) == [0, 1]
  with open(tmp_path / "transfer.csv") as f:
    assert len(list(csv.DictReader(f))) == len(rows)
  md = (tmp_path / "transfer.md").read_text()
  assert "± " in md and "(2 seeds)" in md and os.path.getsize(tmp_path / "transfer.png") > 5000
  bad = _config("transfer,smoke")
  bad.sources, bad.tasks = trained, ("gtzan",)
  with pytest.raises(ConfigError, match="config.manual_dirs.gtzan"):
    transfer.check(bad, str(tmp_path / "other"))
