"""Self-supervised pre-training: encoders and workers, targets, weightings in the train step
(8 devices = 1 device), probes that keep the pre-trained encoder, and the grid job."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from optax.experimental import aggregating

from mirjax import models
from mirjax.optim import weighting
from mirjax.data.info import Info
from mirjax.system import build_system
from mirjax.tasks import reconstruction

from helpers import assert_sharded_step_matches_single_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFO = Info(name="toy", sample_rate=16000, tag_names=("a", "b"))


def _module():
  spec = importlib.util.spec_from_file_location("ssl_config", os.path.join(ROOT, "configs/ssl.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _config(arg):
  return _module().get_config(arg)


def _audio(n=4, seconds=1.0, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(int(16000 * seconds)) / 16000
  f0 = rng.uniform(100, 400, (n, 1))
  return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal((n, t.size))).astype(np.float32)


@pytest.mark.parametrize("encoder", models.ENCODERS)
def test_encoders_give_frame_sequences_at_their_stride(encoder):
  c = _config(f"smoke,{encoder}")
  system = build_system(c, INFO)
  state = system.make_state(jax.random.key(0))
  # jitted: run eagerly, op by op, the forward pass takes longer than compiling it
  out = jax.jit(system.model.apply)({"params": state.params, **state.model_state},
                                    jnp.asarray(_audio(2, 2.0)))
  stride = models.encoder_stride(c.model)
  for w, dim in zip(system.task.branches, system.task.dims):
    assert out[w].shape[0] == 2 and out[w].shape[2] == dim
    assert out[w].shape[1] in (32000 // stride, -(-32000 // stride))


@pytest.mark.parametrize("name", sorted(reconstruction.WORKERS))
def test_worker_targets_are_standardised_frames(name):
  x = jnp.asarray(_audio(3, 1.0))
  for stride in (256, 1024):
    frames = 16000 // stride
    y = np.asarray(reconstruction.target(name, x, 16000, frames, stride))
    assert y.shape == (3, frames, reconstruction.WORKERS[name][0])
    assert np.all(np.isfinite(y))
    assert np.abs(y.mean(axis=(0, 1))).max() < 1e-3


def test_waveform_target_is_the_segment_averaged():
  x = jnp.asarray(_audio(2, 1.0))
  y = reconstruction.target("waveform", x, 16000, 62, 256)
  raw = np.asarray(x)[:, :62 * 256].reshape(2, 62, 64, 4).mean(-1)
  want = (raw - raw.mean(axis=(0, 1))) / (raw.std(axis=(0, 1)) + 1e-3)
  np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("weighting_name", ["equal", "pcgrad", "gradnorm", "uncertainty"])
def test_pretraining_step_on_8_devices_equals_1_device(weighting_name):
  c = _config(f"smoke,temporal,{weighting_name}")
  system = build_system(c, INFO)
  batch = {"audio": _audio(16, 1.0, seed=1)}
  combiner = _module().WEIGHTINGS[weighting_name]
  agg = {"sum": lambda: combine_sum(len(system.task.branches)), "pcgrad": lambda: weighting.pcgrad(3),
         "gradnorm": lambda: weighting.gradnorm(3, "['body']['project']"),
         "uncertainty": lambda: weighting.uncertainty(3)}[combiner]()
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()), agg, optax.sgd(1e-3))
  # uncertainty and gradnorm: the contracted backward pass the training job takes for them
  assert_sharded_step_matches_single_device(
      system, tx, batch, contract=combiner in ("uncertainty", "gradnorm"),
      branch_leaves="['body']['project']" if combiner == "gradnorm" else None)


def test_static_weighting_takes_one_weight_per_worker_from_the_config():
  from mirjax.optim import combine
  c = _config("smoke,temporal,static")
  assert c.optim.combine.name == "static"
  c.optim.combine.weights.tempogram = 3.0  # as --config.optim.combine.weights.tempogram=3
  agg = combine.build(c.optim.combine, c.task.branches)
  grads = {"w": jnp.stack([jnp.ones(2), 2 * jnp.ones(2), -jnp.ones(2)])}
  update, _ = agg.update(grads, agg.init(None))
  want = {"waveform": 1.0, "tempogram": 3.0, "prosody": 1.0}
  expected = sum(want[b] * g for b, g in zip(c.task.branches, np.asarray(grads["w"])))
  np.testing.assert_allclose(update["w"], expected)


def combine_sum(k):
  from mirjax.optim import combine
  return combine.blended([1.0] * k)


def _main(workdir, data_dir, arg, *extra):
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  p = subprocess.run([sys.executable, "-m", "mirjax.main", f"--config=configs/ssl.py:{arg}",
                      f"--workdir={workdir}", *extra], cwd=ROOT, env=env, capture_output=True,
                     text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-4000:]
  return p


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, data_dir):
  w = tmp_path_factory.mktemp("ssl_pretrain")
  _main(w, data_dir, "smoke,pase,uncertainty")
  return w


def test_pretraining_reports_held_out_worker_losses_and_weights(pretrained, data_dir):
  results = json.load(open(pretrained / "results.json"))
  # Each held-out worker loss is the mean over the test clips of that worker's loss on the
  # clip's first crop (held-out losses read one crop per clip, which starts at 0), here
  # computed on one device in one batch of every test clip.
  from mirjax import steps
  from mirjax.data import pipeline
  from mirjax.checkpoint import load_trained_run
  assert results["selected_by"] == "last step"
  run = load_trained_run(str(pretrained), step=results["selected_step"])
  run.config.data.data_dir = data_dir
  sources, _ = pipeline.load(run.config.data)
  test, crop = sources["test"], run.system.crop
  audio = np.stack([np.asarray(test[i]["audio"][:crop], np.float32) / 32768 for i in range(len(test))])
  losses, n = jax.jit(lambda s, b: steps.eval_losses(s, b, model=run.system.model, task=run.system.task))(
      run.state, {"audio": audio, "mask": np.ones(len(audio), bool)})
  assert int(n) == len(test) and run.system.task.branches == _module().WORKER_SETS["all"]
  for w, loss in zip(run.system.task.branches, np.asarray(losses)):
    assert results[f"test/loss/{w}"] == pytest.approx(float(loss), rel=1e-4), w
  lines = [json.loads(l) for l in open(pretrained / "metrics.jsonl") if '"train"' in l]
  weights = [[l[f"weight/{w}"] for w in _module().WORKER_SETS["all"]] for l in lines]
  assert weights[0] != weights[-1]  # uncertainty weighting moved the weights


def _encoder(workdir, step):
  tree = ocp.StandardCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step), "state"))
  return tree["params"]["encoder"]


@pytest.fixture(scope="module")
def probed(tmp_path_factory, pretrained, data_dir):
  """(workdir, pre-training copy) of a frozen-encoder probe of a copy of `pretrained`, which
  the self-contained test removes: one probe run serves the tests below."""
  root = tmp_path_factory.mktemp("ssl_probe")
  moved, probe = root / "pretrain", root / "probe"
  shutil.copytree(pretrained, moved)
  _main(probe, data_dir, "smoke,pase,probe,drums", f"--config.model.pretrained={moved}")
  return probe, moved


@pytest.mark.parametrize("stage", ["probe", "finetune"])
def test_probe_keeps_and_finetuning_moves_the_pretrained_encoder(stage, pretrained, data_dir, tmp_path,
                                                                 request):
  if stage == "probe":  # the module's probe, of a copy of `pretrained` (the same weights)
    workdir = request.getfixturevalue("probed")[0]
  else:
    workdir = tmp_path
    _main(workdir, data_dir, f"smoke,pase,{stage},drums", f"--config.model.pretrained={pretrained}")
  before, after = _encoder(pretrained, 12), _encoder(workdir, 12)
  same = [np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))]
  assert all(same) if stage == "probe" else not all(same)
  assert "test/accuracy" in json.load(open(workdir / "results.json"))


def test_a_probe_checkpoint_is_self_contained(pretrained, probed, data_dir):
  """A probe loads, and its workdir runs again, after the pre-training folder is gone."""
  from mirjax import checkpoint
  probe, moved = probed
  results = json.load(open(probe / "results.json"))
  shutil.rmtree(moved)
  run = checkpoint.load_trained_run(str(probe))
  assert run.config.model.encoder.name == "pase" and run.step == 12
  for a, b in zip(jax.tree.leaves(_encoder(pretrained, 12)), jax.tree.leaves(run.state.params["encoder"])):
    np.testing.assert_array_equal(a, np.asarray(b))
  _main(probe, data_dir, "smoke,pase,probe,drums", f"--config.model.pretrained={moved}")  # re-evaluates
  again = json.load(open(probe / "results.json"))
  assert again["test/accuracy"] == results["test/accuracy"] and again["steps"] == 12


def test_probe_refuses_a_run_that_is_not_a_pretraining(probed, data_dir, tmp_path):
  # the module's probe run: a trained run whose model is not a pre-training's (no workers)
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu")
  p = subprocess.run([sys.executable, "-m", "mirjax.main", "--config=configs/ssl.py:smoke,probe",
                      f"--config.model.pretrained={probed[0]}", f"--workdir={tmp_path / 'probe'}"],
                     cwd=ROOT, env=env, capture_output=True, text=True)
  assert p.returncode != 0 and "not a self-supervised pre-training run" in p.stderr


def test_grid_job_writes_the_downstream_table(data_dir, tmp_path):
  p = _main(tmp_path, data_dir, "smoke,compare", "--config.train.log_every=2",
            "--config.eval.n_chunks=1", "--config.compare.probe.optim.learning_rate=0.005")
  table = open(tmp_path / "comparison.md").read()
  for point in ("cnn_logmel_temporal_pcgrad", "random"):
    assert f"| {point} |" in table
  assert "tagging_roc_auc" in table and "tempo_accuracy" in table and "tagging_roc_auc" in p.stdout
  from mirjax import checkpoint  # the grid's overrides, and the probe's own, reach the probes
  probe = checkpoint.load_config(str(tmp_path / "cnn_logmel_temporal_pcgrad" / "probe_tempo"))
  assert (probe.train.log_every, probe.eval.n_chunks, probe.optim.learning_rate) == (2, 1, 0.005)
  assert (probe.train.num_steps, probe.task.name, probe.model.freeze) == (4, "classification", True)
