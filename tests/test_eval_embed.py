"""The "eval" and "embed" jobs on smoke-trained workdirs: eval reproduces training's own
test (last or best step), reads other splits and steps, refuses data the model does not fit
and writes nothing in the trained workdir; embed writes one row per clip at the named
layer, equal to the model's layer output averaged by hand, and lists the names when one is
wrong. One end-to-end run of each through `python -m mirjax.main`."""
import csv
import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from mirjax import checkpoint
from mirjax.data import pipeline
from mirjax.errors import ConfigError, WorkdirError
from mirjax.jobs import embed, evaluate, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = dict(rtol=0, atol=1e-6)


def _config(path, arg=None):
  spec = importlib.util.spec_from_file_location("cfg", os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _env(data_dir):
  return dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
              XLA_FLAGS="--xla_force_host_platform_device_count=8")


def _main(data_dir, *args):
  return subprocess.run([sys.executable, "-m", "mirjax.main", *args], cwd=ROOT, env=_env(data_dir),
                        capture_output=True, text=True, timeout=300)


def _train(tmp_path_factory, data_dir, name, select_by=""):
  workdir = str(tmp_path_factory.mktemp(name))
  c = _config("configs/melcnn.py", "smoke")
  c.data.data_dir = data_dir
  c.train.select_by = select_by
  return workdir, train.train_and_evaluate(c, workdir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  """A 12-step log-mel CNN smoke run (checkpoints at steps 6 and 12), tested at its last step."""
  return _train(tmp_path_factory, data_dir, "trained")


@pytest.fixture(scope="module")
def trained_best(tmp_path_factory, data_dir):
  """The same run, tested at its best validation step, kept in best/: selected by a metric
  that is 0 at both validations (6 and 12), and ties keep the earlier step, so the step
  tested (6) is not the last."""
  return _train(tmp_path_factory, data_dir, "trained_best", select_by="tags_without_both_classes")


def _job(config_file, trained_dir, **fields):
  c = _config(config_file)
  c.trained = trained_dir
  for k, v in fields.items():
    c[k] = v
  return c


def _files(folder):
  """{relative path: (size, mtime)} of every file and folder under `folder`."""
  out = {}
  for root, dirs, files in os.walk(folder):
    for name in dirs + files:
      path = os.path.join(root, name)
      st = os.stat(path)
      out[os.path.relpath(path, folder)] = (st.st_size if name in files else 0, st.st_mtime_ns)
  return out


def _assert_same_metrics(scores: dict, results: dict, split: str):
  keys = [k for k in scores if f"{split}/{k}" in results]
  assert "roc_auc" in keys and "pr_auc" in keys
  for k in keys:
    if isinstance(scores[k], dict):  # per-tag
      a, b = scores[k], results[f"{split}/{k}"]
      assert list(a) == list(b)
      np.testing.assert_allclose([np.nan if a[t] is None else a[t] for t in a],
                                 [np.nan if b[t] is None else b[t] for t in a], **TOL)
    else:
      np.testing.assert_allclose(scores[k], results[f"{split}/{k}"], **TOL)


def test_eval_of_the_last_step_reproduces_training_test(trained, tmp_path):
  workdir, results = trained
  out = evaluate.evaluate_trained(_job("configs/eval.py", workdir), str(tmp_path / "ev"))
  assert out["step"] == results["steps"] == 12 and out["checkpoint"] == "last"
  assert out["dataset"] == results["dataset"] and out["trained"] == os.path.abspath(workdir)
  assert list(out["metrics"]) == ["test"] and out["num_examples"] == {"test": 8}
  _assert_same_metrics(out["metrics"]["test"], results, "test")
  saved = json.load(open(tmp_path / "ev" / "eval.json"))
  assert saved["step"] == 12 and saved["trained"] == os.path.abspath(workdir)
  np.testing.assert_allclose(saved["metrics"]["test"]["roc_auc"], results["test/roc_auc"], **TOL)


def test_eval_of_best_matches_the_selected_step(trained_best, tmp_path):
  workdir, results = trained_best
  assert results["selected_step"] == 6 and results["steps"] == 12
  out = evaluate.evaluate_trained(_job("configs/eval.py", workdir, step="best"), str(tmp_path / "a"))
  assert out["step"] == 6 and out["checkpoint"] == "best"
  _assert_same_metrics(out["metrics"]["test"], results, "test")
  last = evaluate.evaluate_trained(_job("configs/eval.py", workdir), str(tmp_path / "b"))
  assert last["step"] == 12 and last["metrics"]["test"]["roc_auc"] != out["metrics"]["test"]["roc_auc"]


def test_eval_reads_other_splits_and_steps_and_leaves_the_trained_workdir_alone(trained, tmp_path, data_dir):
  workdir, results = trained
  before = _files(workdir)
  out = evaluate.evaluate_trained(_job("configs/eval.py", workdir, splits=("train,valid",)),
                                  str(tmp_path / "a"))
  assert out["num_examples"] == {"train": 48, "valid": 8}
  # training validated at its last step: the same numbers
  np.testing.assert_allclose(out["metrics"]["valid"]["roc_auc"], results["valid/roc_auc"], **TOL)
  from helpers import rescore_with_sklearn  # the train split scored clip by clip by scikit-learn
  np.testing.assert_allclose(out["metrics"]["train"]["roc_auc"],
                             rescore_with_sklearn(workdir, data_dir, "train")["roc_auc"], atol=1e-6)
  out = evaluate.evaluate_trained(_job("configs/eval.py", workdir, step="6"), str(tmp_path / "b"))
  assert out["step"] == 6
  embed.embed(_job("configs/embed.py", workdir), str(tmp_path / "c"))
  with pytest.raises(WorkdirError, match=r"no checkpoint of step 7; it holds steps \[6, 12\]"):
    evaluate.evaluate_trained(_job("configs/eval.py", workdir, step="7"), str(tmp_path / "d"))
  with pytest.raises(ConfigError, match="inside the trained workdir"):
    evaluate.evaluate_trained(_job("configs/eval.py", workdir), os.path.join(workdir, "eval"))
  with pytest.raises(ConfigError, match="kept no best step"):
    evaluate.evaluate_trained(_job("configs/eval.py", workdir, step="best"), str(tmp_path / "e"))
  assert _files(workdir) == before  # nothing created, changed or touched
  assert not os.path.exists(tmp_path / "d") and not os.path.exists(tmp_path / "e")


def test_eval_refuses_data_the_model_does_not_fit(trained, tmp_path):
  workdir, _ = trained
  c = _job("configs/eval.py", workdir)
  c.data.label = "texture"  # the same audio, now with classes the tagger has no outputs for
  with pytest.raises(ConfigError, match=r"does not fit the model(.|\n)*class_names: 0 in the "
                                        r"checkpoint, 3 now"):
    evaluate.evaluate_trained(c, str(tmp_path / "x"))
  with pytest.raises(ConfigError, match="config.splits"):
    evaluate.evaluate_trained(_job("configs/eval.py", workdir, splits=("tset",)), str(tmp_path / "y"))
  with pytest.raises(ConfigError, match="config.trained is empty"):
    evaluate.evaluate_trained(_job("configs/eval.py", ""), str(tmp_path / "z"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(WorkdirError, match="holds no checkpoint"):
    evaluate.evaluate_trained(_job("configs/eval.py", str(tmp_path / "empty")), str(tmp_path / "w"))
  assert os.listdir(tmp_path / "empty") == []
  assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_eval_end_to_end_and_a_bad_trained_path_in_one_line(trained, data_dir, tmp_path):
  workdir, results = trained
  out_dir = str(tmp_path / "eval")
  p = _main(data_dir, "--config=configs/eval.py", f"--config.trained={workdir}", f"--workdir={out_dir}",
            "--config.splits=valid,test")
  assert p.returncode == 0, p.stderr[-3000:]
  saved = json.load(open(os.path.join(out_dir, "eval.json")))
  assert saved["step"] == 12 and list(saved["metrics"]) == ["valid", "test"]
  for split in ("valid", "test"):
    np.testing.assert_allclose(saved["metrics"][split]["roc_auc"], results[f"{split}/roc_auc"], **TOL)
  assert "test/roc_auc" in p.stdout and "at step 12 (last)" in p.stdout
  missing = str(tmp_path / "no_such_run")
  p = _main(data_dir, "--config=configs/eval.py", f"--config.trained={missing}",
            f"--workdir={tmp_path / 'bad'}")
  assert p.returncode != 0
  assert p.stderr.strip().splitlines() == [
      f"error: config.trained={missing!r} does not exist (or is not a folder): name the --workdir "
      "of a training run"]
  assert not os.path.exists(tmp_path / "bad")


def _example_chunks(workdir, split, i):
  """The `eval.n_chunks` crops evaluation reads of example `i` of `split`, and the run."""
  run = checkpoint.load_trained_run(workdir)
  sources, _ = pipeline.load(run.config.data)
  audio = pipeline.fit_length(sources[split][i]["audio"], run.system.crop)
  starts = pipeline.chunk_starts(len(audio), run.system.crop, run.config.eval.n_chunks)
  chunks = pipeline.to_float(np.stack([audio[s:s + run.system.crop] for s in starts]))
  return run, chunks, sources[split]


def _intermediates(run, chunks):
  variables = {"params": run.state.params, **run.state.model_state}
  _, state = run.system.model.apply(variables, chunks, train=False, capture_intermediates=True,
                                    mutable=["intermediates"])
  return jax.device_get(state["intermediates"])


def test_embed_end_to_end_writes_a_row_per_clip(trained, data_dir, tmp_path):
  workdir, _ = trained
  out_dir = str(tmp_path / "embed")
  p = _main(data_dir, "--config=configs/embed.py", f"--config.trained={workdir}", f"--workdir={out_dir}")
  assert p.returncode == 0, p.stderr[-3000:]
  assert sorted(os.listdir(out_dir)) == [".lock", "embeddings.json", "embeddings_test.csv",
                                         "embeddings_test.npz"]
  npz = np.load(os.path.join(out_dir, "embeddings_test.npz"))
  run, chunks, source = _example_chunks(workdir, "test", 3)
  assert npz["embeddings"].shape == (len(source), 128) == (8, 128)  # the hidden layer's width
  np.testing.assert_array_equal(npz["labels"], np.stack([source[i]["tags"] for i in range(len(source))]))
  np.testing.assert_array_equal(npz["index"], np.arange(8))
  rows = list(csv.DictReader(open(os.path.join(out_dir, "embeddings_test.csv"))))
  assert [r["index"] for r in rows] == [str(i) for i in range(8)] and {r["split"] for r in rows} == {"test"}
  names = json.load(open(os.path.join(out_dir, "embeddings.json")))["tag_names"]
  assert rows[3]["tags"] == ";".join(t for t, on in zip(names, source[3]["tags"]) if on)
  # the sown embedding (after batch norm and ReLU) of each chunk, averaged over the chunks
  by_hand = _intermediates(run, chunks)["backend"]["embedding"][0].mean(axis=0)
  np.testing.assert_allclose(npz["embeddings"][3], by_hand, rtol=1e-5, atol=1e-5)
  assert "layer backend/embedding (128 values per clip)" in p.stdout


def test_embed_pools_a_feature_map_over_time_and_lists_names_of_a_wrong_layer(trained, tmp_path):
  workdir, _ = trained
  out = embed.embed(_job("configs/embed.py", workdir, layer="backend/conv4", splits=("valid",)),
                    str(tmp_path / "conv4"))
  emb = np.load(tmp_path / "conv4" / "embeddings_valid.npz")["embeddings"]
  run, chunks, source = _example_chunks(workdir, "valid", 5)
  fmap = _intermediates(run, chunks)["backend"]["conv4"]["__call__"][0]  # (chunks, time, freq, ch)
  by_hand = fmap.mean(axis=1).reshape(len(chunks), -1).mean(axis=0)
  assert emb.shape == (len(source), by_hand.size) and out["width"] == by_hand.size
  np.testing.assert_allclose(emb[5], by_hand, rtol=1e-5, atol=1e-5)
  with pytest.raises(ConfigError, match=r"config.layer='backend/dens' is not a layer(.|\n)*"
                                        r"backend/dense \(128\)(.|\n)*frontend \("):
    embed.embed(_job("configs/embed.py", workdir, layer="backend/dens"), str(tmp_path / "wrong"))
  assert not os.path.exists(tmp_path / "wrong")
