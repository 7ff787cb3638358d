"""End to end through `python -m mirjax.main`: smoke run, resume after SIGKILL, two
processes, and bad input (unknown config field, a workdir of an incompatible config)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from helpers import assert_reported_metrics_match, rescore_with_sklearn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "configs/sincmodnet.py:smoke"
LONGER = ["--config.train.num_steps=30", "--config.train.checkpoint_every=10",
          "--config.train.eval_every=30"]


def _env(data_dir, devices=8):
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


def _cmd(workdir, config=SMOKE, extra=()):
  return [sys.executable, "-m", "mirjax.main", f"--config={config}", f"--workdir={workdir}", *extra]


def _run(workdir, data_dir, config=SMOKE, extra=(), check=True):
  p = subprocess.run(_cmd(workdir, config, extra), cwd=ROOT, env=_env(data_dir),
                     capture_output=True, text=True, timeout=600)
  if check and p.returncode:
    raise AssertionError(f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}")
  return p


def _params(workdir, step):
  tree = ocp.StandardCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step), "state"))
  return tree["params"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
  """An uninterrupted 30-step smoke run."""
  workdir = str(tmp_path_factory.mktemp("reference"))
  _run(workdir, data_dir, extra=LONGER)
  return workdir


def test_smoke_run_end_to_end(tmp_path, data_dir):
  workdir = str(tmp_path)
  p = _run(workdir, data_dir)
  results = json.load(open(os.path.join(workdir, "results.json")))
  # The reported test metrics are those of the last checkpoint's scores, recomputed by
  # scikit-learn example by example.
  assert_reported_metrics_match(results, rescore_with_sklearn(workdir, data_dir))
  assert results["devices"] == 8 and results["steps"] == 12
  assert "test/roc_auc" in p.stdout  # the results table
  lines = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert {l["split"] for l in lines} == {"train", "valid", "test"}
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tensorboard")))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["12", "6"]
  assert os.path.getsize(os.path.join(workdir, "filters.png")) > 1000


def test_killed_run_resumes_to_the_same_parameters(tmp_path, data_dir, reference):
  workdir = str(tmp_path)
  proc = subprocess.Popen(_cmd(workdir, extra=LONGER), cwd=ROOT, env=_env(data_dir),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  first = os.path.join(workdir, "checkpoints", "10")
  deadline = time.time() + 300
  while not os.path.isdir(first) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  assert proc.poll() is None, "the run ended before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(os.path.join(workdir, "results.json"))
  _run(workdir, data_dir, extra=LONGER)
  got, want = _params(workdir, 30), _params(reference, 30)
  leaves = lambda t: [np.asarray(x) for x in __import__("jax").tree.leaves(t)]
  for a, b in zip(leaves(got), leaves(want), strict=True):
    np.testing.assert_array_equal(a, b)


def test_two_processes_with_the_local_launcher(tmp_path, data_dir, reference):
  """launch/local.sh starts two CPU processes (4 devices each) as one 8-device job, and it
  trains what the one-process 8-device run trains: each process reads its rows of the same
  global batches (examples, crops, order), so only the reductions' rounding differs.
  Tolerance: 1e-2 of the parameters' norm after 30 Adam steps (float32 noise that a
  max-pool near-tie can route elsewhere, amplified by Adam's sign-like first steps; 1.6e-3
  measured), 0.01 in test ROC-AUC. That the batches are the same exactly is
  test_two_processes_read_the_one_process_batches."""
  p = subprocess.run(["bash", "launch/local.sh", "2", f"--config={SMOKE}", f"--workdir={tmp_path}",
                      *LONGER], cwd=ROOT, env=dict(_env(data_dir, devices=4), PYTHON=sys.executable),
                     capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-5000:]
  results = json.load(open(tmp_path / "results.json"))
  want = json.load(open(os.path.join(reference, "results.json")))
  assert results["processes"] == 2 and results["devices"] == 8 and want["processes"] == 1
  assert results["steps"] == want["steps"] == 30
  assert abs(results["test/roc_auc"] - want["test/roc_auc"]) < 0.01, (results["test/roc_auc"], want["test/roc_auc"])
  import jax
  import optax
  from mirjax import checkpoint
  got, ref = (checkpoint.load_trained(w, step=30)[1].params for w in (str(tmp_path), reference))
  diff = optax.tree.norm(jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), got, ref))
  assert diff < 1e-2 * optax.tree.norm(jax.tree.map(np.asarray, ref)), diff


def test_local_launcher_stops_the_job_when_a_process_fails(tmp_path, data_dir):
  p = subprocess.run(["bash", "launch/local.sh", "2", f"--config={SMOKE}", f"--workdir={tmp_path}",
                      "--config.train.batch_size=7"],
                     cwd=ROOT, env=dict(_env(data_dir, devices=4), PYTHON=sys.executable),
                     capture_output=True, text=True, timeout=300)
  assert p.returncode != 0 and "must be a positive multiple of the 8 devices" in p.stderr


def test_unknown_config_field_is_a_clear_error(tmp_path, data_dir):
  p = _run(str(tmp_path), data_dir, extra=["--config.train.num_stepz=3"], check=False)
  assert p.returncode != 0
  assert "num_stepz" in p.stderr
  assert not os.listdir(tmp_path)


def test_workdir_of_incompatible_config_is_refused_untouched(data_dir, reference):
  def snapshot():
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, fs in os.walk(reference) for f in fs if f != ".lock"}  # the lock names its holder
  before = snapshot()
  p = _run(reference, data_dir, config="configs/sincnet.py:smoke", check=False)
  assert p.returncode != 0
  assert "incompatible config" in p.stderr and "model.frontend.name" in p.stderr
  assert snapshot() == before


def test_a_dataset_without_held_out_examples_says_so(tmp_path, data_dir):
  """A folder whose files all go to training trains, and warns that nothing will be measured
  (it reported no metric without a word before)."""
  import soundfile as sf
  root = tmp_path / "only_train"
  root.mkdir()
  rng = np.random.default_rng(0)
  rows = ["path,tags,split"]
  for i in range(4):
    sf.write(root / f"f{i}.wav", (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32), 16000)
    rows.append(f"f{i}.wav,{'ab'[i % 2]},train")
  (root / "tags.csv").write_text("\n".join(rows) + "\n")
  p = _run(str(tmp_path / "w"), data_dir, extra=["--config.data.name=folder", f"--config.data.manual_dir={root}",
                                                 "--config.data.clip_seconds=1.0"])
  assert "has no validation or test examples" in p.stderr
  results = json.load(open(tmp_path / "w" / "results.json"))
  assert not any(k.startswith(("valid/", "test/")) for k in results)


def _toy_source(n=13):
  rng = np.random.default_rng(0)
  return [{"audio": rng.integers(-3000, 3000, 500).astype(np.int16), "tags": np.eye(5, dtype=np.uint8)[i % 5]}
          for i in range(n)]


def test_two_processes_read_the_one_process_batches(monkeypatch):
  """Each of two processes reads its half of every global batch: side by side they are the
  batches one process reads (examples, crops, order), so a two-process run trains what a
  one-process run trains (process p used to take every p-th example, with other crops)."""
  import jax
  from mirjax.data import pipeline
  source = _toy_source()
  take = lambda it, n: [next(it) for _ in range(n)]
  one = take(pipeline.train_iterator(source, local_batch=8, crop=100, seed=3, read_threads=0), 5)
  halves = []
  for p in range(2):
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda p=p: p)
    halves.append(take(pipeline.train_iterator(source, local_batch=4, crop=100, seed=3, read_threads=0), 5))
  for b, b0, b1 in zip(one, *halves):
    for key in ("audio", "tags"):
      np.testing.assert_array_equal(b[key], np.concatenate([b0[key], b1[key]]))


def _assert_same_batches(want, got):
  assert len(want) == len(got)
  for a, b in zip(want, got):
    assert sorted(a) == sorted(b)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_worker_processes_read_the_thread_batches_and_resume():
  """data.worker_processes: two grain worker processes make the batches read threads make
  (examples, crops, order), and either iterator's state after k batches resumes the other
  kind, fresh, at batch k + 1."""
  from mirjax.data import pipeline
  source, k = _toy_source(), 5
  make = lambda workers: pipeline.train_iterator(source, local_batch=4, crop=100, seed=3, read_threads=1,
                                                 worker_processes=workers)
  threads = make(0)
  want = [next(threads) for _ in range(k + 3)]
  workers = make(2)
  try:
    _assert_same_batches(want[:k], [next(workers) for _ in range(k)])
    state = workers.get_state()
  finally:
    workers.close()
  threads = make(0)
  for _ in range(k):
    next(threads)
  assert state == threads.get_state()  # one format: a checkpoint resumes with either setting
  resumed = make(2)
  resumed.set_state(state)
  try:
    _assert_same_batches(want[k:], [next(resumed) for _ in range(3)])
  finally:
    resumed.close()
  fresh = make(0)
  fresh.set_state(state)
  _assert_same_batches(want[k:k + 1], [next(fresh)])
