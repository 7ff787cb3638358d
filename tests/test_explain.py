"""Explainability (configs/explain.py): the study at smoke size (one source model trained,
the similarity job on it, the transfer job) and its resumption, what each job writes, and
settings that cannot work."""
import csv
import json
import os

import numpy as np
import pytest

from mirjax import config as config_lib
from mirjax.errors import ConfigError
from mirjax.jobs import explain, similarity, transfer

LAYERS = [f"backend/block{i}" for i in range(5)] + ["backend/embedding"]


def _config(arg):
  return config_lib.from_file("explain", arg)


@pytest.fixture(scope="module")
def study(tmp_path_factory, data_dir):
  workdir = tmp_path_factory.mktemp("explain_study")
  c = _config("smoke")
  c.architectures, c.source_tasks, c.data_dir = ("shortchunk",), ("tags",), data_dir
  c.transfer.probes = ("linear",)
  return c, workdir, explain.explain(c, str(workdir))


def test_every_architecture_and_task_makes_a_training_config():
  for arch in ("shortchunk", "fcn", "samplecnn"):
    for task in ("tags", "tempo"):
      c = _config(f"{arch},{task},smoke")
      assert c.task.name == ("tagging" if task == "tags" else "classification")
      assert c.data.label == ("" if task == "tags" else task)
  assert _config("fcn").model.backend.name == "fcn"
  assert _config("").job == "explain" and _config("smoke").smoke
  with pytest.raises(ConfigError, match="one architecture"):
    _config("fcn,samplecnn")
  with pytest.raises(ConfigError, match="reads its models from trained workdirs"):
    _config("similarity,fcn")


def test_similarity_writes_cka_of_every_layer_trained_and_untrained(study):
  _, workdir, _ = study
  folder = workdir / "similarity" / "shortchunk_tags"
  out = json.loads((folder / "similarity.json").read_text())
  assert out["layers"] == LAYERS and out["estimator"] == "exact"
  assert out["models"] == ["trained (step 12)", "untrained (seed 0)", "untrained (seed 1)"]
  for kernel in ("linear", "rbf"):
    with open(folder / f"cka_{kernel}.csv") as f:
      rows = list(csv.reader(f))
    assert rows[0] == ["model", "layer", "scattering1", "scattering2", "mfcc", "logmel", "chance"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(m, l) for m in out["models"] for l in LAYERS]
    values = np.array([[float(v) for v in r[2:]] for r in rows[1:]]).reshape(3, len(LAYERS), 5)
    assert ((values >= 0) & (values <= 1 + 1e-5)).all() and values.std() > 0.01
    assert not np.allclose(values[0], values[1], atol=1e-3)  # trained != untrained
    np.testing.assert_allclose(out["untrained_mean"][kernel], values[1:].mean(0), atol=1e-4)
    assert os.path.getsize(folder / f"cka_{kernel}.png") > 5000


def test_transfer_probes_every_layer_untrained_and_hand_crafted_on_every_task(study):
  _, workdir, _ = study
  folder = workdir / "transfer"
  rows = json.loads((folder / "transfer.json").read_text())["rows"]
  assert len(rows) == 2 * (3 * len(LAYERS) + 4)  # tasks x (trained + 2 untrained seeds) x layers + 4 feature sets
  for task, metric in (("tags", "macro ROC-AUC"), ("tempo", "accuracy")):
    mine = [r for r in rows if r["task"] == task]
    assert {r["metric"] for r in mine} == {metric}
    assert all(0.0 <= r["test"] <= 1.0 and 0.0 <= r["valid"] <= 1.0 for r in mine)
    assert {r["layer"] for r in mine if r["model"] == "hand-crafted"} == {"scattering1", "scattering2",
                                                                           "mfcc", "logmel"}
    assert sorted(r["seed"] for r in mine if r["model"].endswith("untrained") and r["layer"] == LAYERS[0]) == [0, 1]
  with open(folder / "transfer.csv") as f:
    assert len(list(csv.DictReader(f))) == len(rows)
  md = (folder / "transfer.md").read_text()
  assert "± " in md and "(2 seeds)" in md and os.path.getsize(folder / "transfer.png") > 5000


def test_the_study_sums_up_both_claims_and_resumes_without_redoing_anything(study):
  c, workdir, text = study
  assert "trained / " in text and "| tags | macro ROC-AUC |" in text and "| tempo | accuracy |" in text
  assert (workdir / "study.md").read_text() == text
  outputs = [workdir / "sources" / "shortchunk_tags" / "results.json",
             workdir / "similarity" / "shortchunk_tags" / "similarity.json", workdir / "transfer" / "transfer.json"]
  before = [p.stat().st_mtime_ns for p in outputs]
  assert explain.explain(c, str(workdir)) == text
  assert [p.stat().st_mtime_ns for p in outputs] == before


def test_settings_that_cannot_work_are_refused(study, tmp_path):
  _, workdir, _ = study
  trained = str(workdir / "sources" / "shortchunk_tags")
  for field, value, message in (("splits", ("valid", "test"), "reads one split"),
                                ("kernels", ("cosine",), "choose among"),
                                ("features", ("chroma",), "choose among"),
                                ("cka_batch", 2, "at least 8 clips")):
    bad = _config("similarity,smoke")
    bad.trained, bad[field] = trained, value
    with pytest.raises(ConfigError, match=message):
      similarity.check(bad, str(tmp_path))
  bad = _config("transfer,smoke")
  bad.sources, bad.tasks = trained, ("gtzan",)
  with pytest.raises(ConfigError, match="config.manual_dirs.gtzan"):
    transfer.check(bad, str(tmp_path))
  bad.sources = ""
  with pytest.raises(ConfigError, match="config.sources is empty"):
    transfer.check(bad, str(tmp_path))
