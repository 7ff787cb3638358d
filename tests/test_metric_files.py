"""results.json, metrics.jsonl, checkpoint JSON and `mirjax.tag --format=json` are strict
JSON: a NaN or infinite number is written as null, never as a bare NaN / Infinity token."""
import csv
import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from mirjax import checkpoint, metrics


def strict_loads(text):
  """json.loads that refuses the NaN, Infinity and -Infinity tokens json.dumps writes by default."""
  def refuse(token):
    raise ValueError(f"not strict JSON: {token}")
  return json.loads(text, parse_constant=refuse)


def test_strict_loads_refuses_what_json_dumps_writes_by_default():
  with pytest.raises(ValueError, match="NaN"):
    strict_loads(json.dumps({"x": float("nan")}))


def test_results_json_has_null_for_non_finite_values(tmp_path, capsys):
  results = {"test/roc_auc": 0.75, "test/pr_auc": float("nan"), "train_examples_per_s": float("inf"),
             "test/loss": -math.inf, "steps": 12, "dataset": "mtat/clean",
             "test/per_tag_roc_auc": {"rock": 0.5, "quiet": float("nan")},
             "test/per_tag_pr_auc": {"rock": 0.25, "quiet": float("nan")},
             "num_examples": {"train": 8, "test": 4}}
  metrics.write_results(str(tmp_path), results)
  got = strict_loads((tmp_path / "results.json").read_text())
  assert got == {**results, "test/pr_auc": None, "train_examples_per_s": None, "test/loss": None,
                 "test/per_tag_roc_auc": {"rock": 0.5, "quiet": None},
                 "test/per_tag_pr_auc": {"rock": 0.25, "quiet": None}}
  assert math.isnan(results["test/pr_auc"])  # the caller's dict is left as it was
  with open(tmp_path / "per_tag.csv") as f:
    assert list(csv.reader(f)) == [["tag", "roc_auc", "pr_auc"], ["rock", "0.500000", "0.250000"],
                                   ["quiet", "", ""]]
  back = metrics.read_results(str(tmp_path / "results.json"))  # null read back as NaN
  assert math.isnan(back["test/pr_auc"]) and math.isnan(back["test/per_tag_roc_auc"]["quiet"])
  assert back["test/roc_auc"] == 0.75 and back["num_examples"] == {"train": 8, "test": 4}
  assert "test/pr_auc" in capsys.readouterr().out


def test_the_comparison_reads_a_finished_run_with_null(tmp_path):
  from mirjax.jobs import compare
  import ml_collections
  from mirjax import checkpoint
  config = ml_collections.ConfigDict({"seed": 0, "train": {"num_steps": 4}})
  (tmp_path / "results.json").write_text('{"dataset": "d", "test/accuracy": null, "test/loss": 1.5, '
                                         f'"config_hash": "{checkpoint.config_hash(config.to_dict())}"}}')
  results = compare._run(config, str(tmp_path))  # finished with this config: read, not trained
  assert math.isnan(float(results["test/accuracy"])) and results["test/loss"] == 1.5


def test_metrics_jsonl_has_null_for_non_finite_values(tmp_path):
  writer = metrics.MetricWriter(str(tmp_path))
  writer.write(3, "train", {"loss": np.float32(np.nan), "update_norm": np.inf, "lr": 0.1,
                            "per_tag": {"rock": 0.5}})
  writer.write(4, "valid", {"roc_auc": np.array(-np.inf), "pr_auc": 0.5})
  writer.close()
  lines = [strict_loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [{k: v for k, v in line.items() if k != "time"} for line in lines] == [
      {"step": 3, "split": "train", "loss": None, "update_norm": None, "lr": 0.1},
      {"step": 4, "split": "valid", "roc_auc": None, "pr_auc": 0.5}]


def test_dumps_writes_null_and_raises_on_what_escapes(monkeypatch):
  text = metrics.dumps({"a": (1.0, float("nan")), "b": [np.float32(np.inf), np.int64(2)]})
  assert text == '{"a": [1.0, null], "b": [null, 2]}'
  monkeypatch.setattr(metrics, "finite_or_none", lambda obj: obj)  # a regression in the cleaning
  with pytest.raises(ValueError, match="JSON compliant"):
    metrics.dumps({"x": float("nan")})


def test_checkpoint_json_is_strict_and_resumes(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  config = {"optim": {"clip": float("inf"), "lr": 0.1}, "model": {"sizes": (1, 2)}}
  meta = {"tag_names": ["rock"], "sample_rate": 16000, "threshold": float("nan")}
  state = {"w": np.arange(3, dtype=np.float32)}
  ckpt.save(1, state, {"train": {"index": 5}}, config, meta, force=True)
  ckpt.wait_until_finished()
  parsed = 0
  for d, _, files in os.walk(tmp_path / "checkpoints" / "1"):
    for name in files:
      with open(os.path.join(d, name), "rb") as f:
        raw = f.read()
      try:
        json.loads(raw)
      except ValueError:  # not JSON (array data)
        continue
      strict_loads(raw)
      parsed += 1
  assert parsed >= 3  # config, meta and data at least
  assert ckpt.saved_config(1)["optim"] == {"clip": None, "lr": 0.1}
  assert ckpt.saved_meta(1)["threshold"] is None
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = {"w": jax.ShapeDtypeStruct((3,), np.float32, sharding=sharding)}
  restored, data = ckpt.restore(1, abstract, config)  # the same config is not "incompatible"
  np.testing.assert_array_equal(restored["w"], state["w"])
  assert data == {"train": {"index": 5}}
  ckpt.close()


def test_tag_json_output_is_strict():
  code = ("from mirjax import tag; print(tag._format([{'file': 'a.wav', 'seconds': 1.0, 'windows': 1, "
          "'tags': [{'tag': 'rock', 'score': float('nan')}, {'tag': 'pop', 'score': 0.5}]}], 'json'))")
  p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                     env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert p.returncode == 0, p.stderr[-3000:]
  assert strict_loads(p.stdout)[0]["tags"] == [{"tag": "rock", "score": None}, {"tag": "pop", "score": 0.5}]
