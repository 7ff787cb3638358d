"""The MagnaTagATune protocol of Won et al. (2020): the published back-end size, their Adam
then SGD optimiser, epochs resolved to steps, and the checkpoint selected by a validation
metric (tested at its step, kept across a resume)."""
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from mirjax import checkpoint, config as config_lib, models, optim, system as system_lib
from mirjax.data import pipeline
from mirjax.jobs import train


def _smoke(data_dir, **train_fields):
  c = config_lib.from_file("melcnn", "smoke")
  c.data.data_dir = data_dir
  for k, v in train_fields.items():
    c.train[k] = v
  return c


def _params(workdir, folder, step):
  tree = ocp.StandardCheckpointer().restore(os.path.join(workdir, folder, str(step), "state"))
  return [np.asarray(x) for x in jax.tree.leaves(tree["params"])]


REAL_LOAD, REAL_EVALUATE = pipeline.load, train.evaluate


class Killed(Exception):
  """Raised in the middle of a run, where a kill would stop it."""


def _inject_valid_roc_auc(monkeypatch, by_step, calls, stop_at=None, on_stop=None):
  """Validation ROC-AUC of the run replaced by `by_step[step]`; every evaluation appended to
  `calls` as (split, step, parameter leaves); at validation step `stop_at`, `on_stop()` then
  `Killed`."""
  loaded = {}

  def load(cfg):
    sources, info = REAL_LOAD(cfg)
    loaded.update(sources)
    return sources, info

  def evaluate(state, source, **kw):
    step, split = int(state.step), "valid" if source is loaded.get("valid") else "test"
    if split == "valid" and step == stop_at:
      on_stop()
      raise Killed
    out = REAL_EVALUATE(state, source, **kw)
    calls.append((split, step, [np.asarray(x) for x in jax.tree.leaves(state.params)]))
    return dict(out, roc_auc=by_step[step]) if split == "valid" else out

  monkeypatch.setattr(pipeline, "load", load)
  monkeypatch.setattr(train, "evaluate", evaluate)


def test_mtat_preset_is_the_published_short_chunk_cnn():
  c = config_lib.from_file("melcnn", "mtat")
  assert tuple(c.model.backend.channels) == (128, 128, 256, 256, 256, 256, 512)
  assert c.model.backend.dense == 512 and c.model.frontend.n_mels == 128
  assert round(c.data.crop_seconds * c.data.sample_rate) == 59049 and c.data.sample_rate == 16000
  assert c.eval.n_chunks == 16 and c.train.batch_size == 16 and c.train.select_by == "roc_auc"
  assert c.optim.name == "adam_sgd" and c.optim.learning_rate == 1e-4 and c.optim.clip_norm == 0
  assert tuple(c.optim.sgd_boundary_epochs) == (80, 100, 120) and c.train.num_epochs == 200
  small = config_lib.from_file("melcnn", "mtat_small")
  assert tuple(small.model.backend.channels) == (32, 32, 64, 64, 128) and small.data.name == "mtat"
  assert tuple(config_lib.from_file("melcnn").model.backend.channels) == (32, 32, 64, 64, 128)
  assert models.describe_backend(c.model) == "short_chunk_cnn channels=128,128,256,256,256,256,512 dense=512"

  model = models.build(c.model, n_outputs=50)
  shapes = jax.eval_shape(lambda: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                                             jnp.zeros((1, 59049))))
  widths = [1, 128, 128, 256, 256, 256, 256, 512]
  conv = sum(9 * a * b for a, b in zip(widths[:-1], widths[1:]))  # 3x3 kernels, no bias (BN follows)
  norms = 2 * sum(widths[1:]) + 2 * 128 + 2 * 512  # BN scale + bias: blocks, input (per mel band), dense
  head = 512 * 512 + 512 * 50 + 50  # dense (no bias, BN follows) and the logits
  assert conv + norms + head == 3_685_298
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"])) == conv + norms + head


def test_adam_then_sgd_is_torch_adam_then_nesterov_sgd():
  """Coupled L2 decay; Adam to step 3; SGD at 0.1 from it, 0.01 from step 5, its momentum
  starting at zero at the switch: against the torch update rules written out."""
  c = config_lib.from_file("melcnn", "mtat")
  c.optim.sgd_boundaries, c.optim.sgd_learning_rates = (3, 5), (0.1, 0.01)
  tx = optim.build(c.optim, ("tagging",), total_steps=8)
  rng = np.random.default_rng(0)
  p = {"w": rng.standard_normal(4).astype(np.float32)}
  state, want = tx.init(p), p["w"].astype(np.float64)
  m = v = buf = np.zeros(4)
  lr, wd, b1, b2 = 1e-4, 1e-4, 0.9, 0.999
  for t in range(8):
    g = rng.standard_normal(4).astype(np.float32)
    updates, state = tx.update({"w": jnp.asarray(g)[None]}, state, p)
    p = optax.apply_updates(p, updates)
    d = g + wd * want
    if t < 3:
      m, v = b1 * m + (1 - b1) * d, b2 * v + (1 - b2) * d * d
      want = want - lr * (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + 1e-8)
    else:
      buf = 0.9 * buf + d
      want = want - (0.1 if t < 5 else 0.01) * (d + 0.9 * buf)
    np.testing.assert_allclose(p["w"], want, rtol=1e-5, atol=1e-7)


def test_epochs_resolve_to_steps_of_the_training_split(tmp_path, data_dir, monkeypatch):
  c = _smoke(data_dir, num_epochs=1.25, eval_every_epochs=0.5, checkpoint_every_epochs=0.5)
  c.optim.warmup_epochs = 0.25
  n_train = len(pipeline.load(c.data)[0]["train"])
  want = math.ceil(1.25 * n_train / 8)
  built, real_build = [], optim.build

  def build(cfg, branches, total_steps, **kw):
    built.append((total_steps, cfg.warmup_steps))
    return real_build(cfg, branches, total_steps, **kw)

  monkeypatch.setattr(system_lib.optim, "build", build)
  results = train.train_and_evaluate(c, str(tmp_path))
  assert results["steps"] == want and results["train_examples"] == n_train
  assert built == [(want, math.ceil(0.25 * n_train / 8))]  # the schedule's step count is the resolved one
  assert results["epochs"] == pytest.approx(want * 8 / n_train)
  assert results["selection"] == f"last step ({want})" and results["selected_step"] == want
  every = math.ceil(0.5 * n_train / 8)
  at = sorted({s for s in range(every, want + 1, every)} | {want})  # eval and checkpoint steps
  assert sorted(map(int, os.listdir(tmp_path / "checkpoints"))) == at[-2:]  # keep_checkpoints=2
  lines = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [l["step"] for l in lines if l["split"] == "valid"] == at
  saved = checkpoint.load_config(str(tmp_path))  # what a resumed run and load_trained see
  assert saved.train.num_steps == want and saved.train.examples_per_epoch == n_train


def test_select_by_tests_the_best_validation_step(tmp_path, data_dir, monkeypatch):
  calls = []
  _inject_valid_roc_auc(monkeypatch, {2: 0.5, 4: 0.9, 6: 0.8}, calls)
  c = _smoke(data_dir, num_steps=6, eval_every=2, checkpoint_every=3, select_by="roc_auc")
  results = train.train_and_evaluate(c, str(tmp_path))
  assert results["selected_step"] == 4 and results["selected_by"] == "roc_auc"
  assert results["selected_value"] == 0.9 and results["valid/roc_auc"] == 0.9
  assert results["selection"] == "best valid roc_auc (0.9000) at step 4 of 6"
  assert results["backend"] == "short_chunk_cnn channels=32,32,64,64,128 dense=128"
  (split, step, tested), = [call for call in calls if call[0] == "test"]
  at_4 = next(leaves for s, t, leaves in calls if (s, t) == ("valid", 4))
  last = next(leaves for s, t, leaves in calls if (s, t) == ("valid", 6))
  for a, b, best in zip(tested, at_4, _params(str(tmp_path), "best", 4), strict=True):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, best)
  assert any(not np.array_equal(a, b) for a, b in zip(tested, last))
  assert os.listdir(tmp_path / "best") == ["4"]


def test_resumed_run_keeps_the_best_step_and_its_checkpoint(tmp_path, data_dir, monkeypatch):
  workdir = str(tmp_path)
  roc = {2: 0.5, 4: 0.9, 6: 0.6, 8: 0.8}
  c = _smoke(data_dir, num_steps=8, eval_every=2, checkpoint_every=2, keep_checkpoints=1,
             select_by="roc_auc")

  def checkpoint_6_on_disk():
    deadline = time.time() + 60
    while not os.path.isdir(os.path.join(workdir, "checkpoints", "6")) and time.time() < deadline:
      time.sleep(0.05)

  calls = []  # killed at step 8's validation, after step 6's checkpoint
  _inject_valid_roc_auc(monkeypatch, roc, calls, stop_at=8, on_stop=checkpoint_6_on_disk)
  with pytest.raises(Killed):
    train.train_and_evaluate(c, workdir)
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  assert os.listdir(os.path.join(workdir, "best")) == ["4"]

  calls = []
  _inject_valid_roc_auc(monkeypatch, roc, calls)
  results = train.train_and_evaluate(c, workdir)
  assert [t for s, t, _ in calls if s == "valid"] == [8]  # resumed from step 6
  assert results["selected_step"] == 4 and results["selected_value"] == 0.9
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["8"]  # 4 went with max_to_keep
  assert os.listdir(os.path.join(workdir, "best")) == ["4"]
  (_, _, tested), = [call for call in calls if call[0] == "test"]
  for a, b in zip(tested, _params(workdir, "best", 4), strict=True):
    np.testing.assert_array_equal(a, b)


def test_losses_are_minimised_and_label_free_runs_refuse_other_metrics(tmp_path, data_dir):
  assert train.lower_is_better("loss") and train.lower_is_better("loss/mfcc")
  assert not train.lower_is_better("roc_auc") and not train.lower_is_better("accuracy")
  assert train.improves("loss", 0.5, {"value": 0.7}) and not train.improves("loss", 0.9, {"value": 0.7})
  assert train.improves("roc_auc", 0.9, {"value": 0.7}) and not train.improves("roc_auc", 0.7, {"value": 0.7})
  assert not train.improves("roc_auc", float("nan"), None)
  c = config_lib.from_file("ssl", "smoke")
  c.data.data_dir, c.train.select_by = data_dir, "roc_auc"
  with pytest.raises(ValueError, match="label-free"):
    train.train_and_evaluate(c, str(tmp_path))
