"""The multi-view network, its baselines as configs, gradient blending in the training job,
and the comparison job."""
import csv
import functools
import importlib.util
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from optax.experimental import aggregating

from mirjax import steps
from mirjax.optim import combine
from mirjax.system import build_system

from helpers import assert_sharded_step_matches_single_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWO_VIEWS = "--config.model.views=('logmel','rawconv')"  # two cheap views keep tests short


def _config(arg):
  spec = importlib.util.spec_from_file_location("multiview_config", os.path.join(ROOT, "configs/multiview.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


class _Info:
  name, sample_rate, class_names, tag_names = "toy", 16000, ("a", "b", "c"), ()


@pytest.mark.parametrize("variant,branches", [
    ("blend", ("joint", "logmel", "rawconv")), ("uniform", ("joint", "logmel", "rawconv")),
    ("concat", ("joint",)), ("late_fusion", ("logmel", "rawconv")), ("single_rawconv", ("rawconv",))])
def test_variants_build_the_right_branches(variant, branches):
  c = _config(f"smoke,{variant}")
  if variant != "single_rawconv":
    c.model.views = ("logmel", "rawconv")
  system = build_system(c, _Info)
  assert system.task.branches == branches
  state = system.make_state(jax.random.key(0))
  # jitted: run eagerly, op by op, the forward pass takes longer than compiling it
  out = jax.jit(system.model.apply)({"params": state.params, **state.model_state}, jnp.zeros((2, 8000)))
  assert set(out) == set(branches) and all(v.shape == (2, 3) for v in out.values())
  want_pred = ("joint",) if "joint" in branches else branches
  assert system.task.predict_from == want_pred
  assert (c.optim.combine.name == "gradient_blending") == (variant == "blend")


class _Source:
  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {"index": i}


def _indices(source):
  return [source[i]["index"] for i in range(len(source))]


@pytest.mark.parametrize("words", ["texture", "tempo,overfit"])
def test_every_variant_trains_on_the_same_examples(words):
  """Blending's held-out tenth is held out of every variant's training split, so all
  train on the same clips (before: only blend lost 90 of its 896); the overfitting regime's
  subset is the same for every variant too, and changes with the seed."""
  from mirjax.jobs import train
  splits = {}
  for variant in ("blend", "uniform", "concat", "late_fusion", "single_logmel"):
    c = _config(f"{words},{variant}")
    splits[variant] = train.training_sources(c, {"train": _Source(896), "valid": _Source(112)})
  trains = {v: _indices(s["train"]) for v, s in splits.items()}
  assert all(t == trains["blend"] for t in trains.values())
  held = set(_indices(splits["blend"]["blend_heldout"]))
  assert len(held) == 90 and not held & set(trains["blend"])
  assert set(_indices(splits["blend"]["blend_train"])) <= set(trains["blend"])
  assert len(trains["blend"]) == (224 if "overfit" in words else 806)
  c = _config(f"{words},concat")
  c.seed = 1
  assert _indices(train.training_sources(c, {"train": _Source(896)})["train"]) != trains["concat"]
  c = _config(f"{words},blend")
  c.data.holdout_fraction = 0.0
  with pytest.raises(ValueError, match="holdout_fraction"):
    train.training_sources(c, {"train": _Source(896)})


def test_blending_waits_for_batch_norm_averages_to_settle():
  from mirjax.jobs import train
  c = _config("texture,blend")
  assert c.model.backend.bn_momentum == 0.99 and train.blend_start(c) == 299
  c.optim.combine.start_step = 50
  assert train.blend_start(c) == 50


def test_multiview_step_on_8_devices_equals_1_device():
  c = _config("smoke,blend")
  c.model.views = ("logmel", "rawconv")
  system = build_system(c, _Info)
  rng = np.random.default_rng(0)
  batch = {"audio": (0.1 * rng.standard_normal((16, 8000))).astype(np.float32),
           "label": rng.integers(0, 3, 16).astype(np.int32)}
  # Plain SGD after non-uniform branch weights: Adam's first steps are sign(g) and would
  # turn float-rounding noise in near-zero gradients into full-size differences.
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                           combine.blended([0.5, 0.2, 0.3]), optax.sgd(1e-3))
  assert_sharded_step_matches_single_device(system, tx, batch, contract=True)


def test_contracted_step_equals_the_per_branch_step():
  c = _config("smoke,uniform")
  c.model.views = ("logmel", "rawconv")
  system = build_system(c, _Info)
  rng = np.random.default_rng(1)
  batch = {"audio": jnp.asarray(0.1 * rng.standard_normal((8, 8000)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 3, 8), jnp.int32)}
  state = system.make_state(jax.random.key(0))
  outs = [jax.jit(functools.partial(steps.train_step, model=system.model, task=system.task,
                                    tx=system.tx, contract=contract))(state, batch)[0].params
          for contract in (False, True)]
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _main(workdir, data_dir, arg, *extra):
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  p = subprocess.run([sys.executable, "-m", "mirjax.main", f"--config=configs/multiview.py:{arg}",
                      f"--workdir={workdir}", TWO_VIEWS, *extra], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-4000:]
  return p


def test_blending_job_logs_and_checkpoints_the_weights(tmp_path, data_dir):
  _main(tmp_path, data_dir, "smoke,tempo,blend")
  lines = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  blend = [l for l in lines if l["split"] == "blend"]
  assert [l["step"] for l in blend] == [4, 8]  # every window of 4 steps, not at the end
  names = ("joint", "logmel", "rawconv")
  first, last = ([l[f"weight/{b}"] for b in names] for l in (blend[0], blend[-1]))
  np.testing.assert_allclose(first, [1 / 3] * 3, rtol=1e-6)  # the first window only records
  assert sum(last) == pytest.approx(1.0, abs=1e-5) and last != first
  state = ocp.StandardCheckpointer().restore(tmp_path / "checkpoints" / "12" / "state")
  weights = [s for s in jax.tree.leaves(state["opt_state"], is_leaf=lambda x: isinstance(x, dict) and "weights" in x)
             if isinstance(s, dict)][0]["weights"]
  np.testing.assert_allclose(weights, last, rtol=1e-6)
  results = json.load(open(tmp_path / "results.json"))
  assert results["dataset"] == "embedded/smoke/tempo"
  assert all(f"test/{b}/accuracy" in results for b in names) and "test/accuracy" in results
  from mirjax.jobs import blend_weights  # the trajectories a comparison plots
  traj = blend_weights.trajectories(str(tmp_path))
  assert [s for s, _ in traj["joint"]] == [4, 8]
  np.testing.assert_allclose([traj[b][-1][1] for b in names], last, rtol=1e-6)
  comparison = tmp_path / "comparison"
  (comparison / "blend").mkdir(parents=True)
  os.symlink(tmp_path, comparison / "blend" / "seed0")
  path = blend_weights.plot(str(comparison))
  assert path.endswith("blend_weights.png") and open(path, "rb").read(4) == b"\x89PNG"
  assert blend_weights.plot(str(tmp_path / "nothing")) is None


def test_compare_job_writes_the_table_and_reuses_finished_runs(tmp_path, data_dir):
  p = _main(tmp_path, data_dir, "smoke,drums,compare", "--config.train.num_steps=4")
  table = open(tmp_path / "comparison.md").read()
  for v in ("single_logmel", "blend"):
    assert f"| {v} |" in table and f"| {v} |" in p.stdout
  rows = list(csv.DictReader(open(tmp_path / "comparison.csv")))
  assert len(rows) == 4 and {r["seed"] for r in rows} == {"0", "1"}
  for r in rows:
    got = json.load(open(tmp_path / r["variant"] / f"seed{r['seed']}" / "results.json"))["test/accuracy"]
    assert float(r["accuracy"]) == pytest.approx(got)
  mean = np.mean([float(r["accuracy"]) for r in rows if r["variant"] == "blend"])
  assert f"| blend | {mean:.4f} ± " in table and "balanced_accuracy" in table
  before = os.path.getmtime(tmp_path / "blend" / "seed0" / "results.json")
  _main(tmp_path, data_dir, "smoke,drums,compare", "--config.train.num_steps=4")
  assert os.path.getmtime(tmp_path / "blend" / "seed0" / "results.json") == before
  # another experiment in the same folder: its finished runs are not taken for this one's
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu")
  p = subprocess.run([sys.executable, "-m", "mirjax.main", "--config=configs/multiview.py:smoke,drums,compare",
                      f"--workdir={tmp_path}", "--config.train.num_steps=4",
                      "--config.optim.learning_rate=0.01"], cwd=ROOT, env=env, capture_output=True, text=True)
  assert p.returncode != 0 and "optim.learning_rate: checkpoint has 0.001, this run has 0.01" in p.stderr, p.stderr[-2000:]
  assert os.path.getmtime(tmp_path / "blend" / "seed0" / "results.json") == before
