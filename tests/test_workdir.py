"""Workdirs a user can trust: one run per workdir (a lock a killed run does not leave
behind), resumes that keep their length, unreadable or vanishing checkpoints, a changed
dataset under a workdir, metrics that stay true after a resume, readers that create nothing."""
import json
import os
import signal
import struct
import subprocess
import sys
import time

import jax
import pytest

from mirjax import checkpoint, config as config_lib, workdir as workdir_lib
from mirjax.errors import MirjaxError, WorkdirError
from mirjax.jobs import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke(data_dir, **train_fields):
  c = config_lib.from_file("melcnn", "smoke")
  c.data.data_dir = data_dir
  for k, v in train_fields.items():
    c.train[k] = v
  return c


def _lines(workdir):
  return [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]


def _hold_lock(workdir):
  """A child process holding WORKDIR's lock until killed."""
  code = ("import sys, time; from mirjax import workdir as w\n"
          "with w.lock(sys.argv[1]):\n  print('locked', flush=True); time.sleep(600)\n")
  proc = subprocess.Popen([sys.executable, "-c", code, workdir], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.stdout.readline().strip() == "locked"
  return proc


def test_a_second_run_on_a_workdir_in_use_is_refused_in_one_line(tmp_path, data_dir):
  workdir = str(tmp_path / "run")
  holder = _hold_lock(workdir)
  try:
    env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu")
    p = subprocess.run([sys.executable, "-m", "mirjax.main", "--config=configs/melcnn.py:smoke",
                        f"--workdir={workdir}"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "in use by another run" in last and f"pid {holder.pid}" in last
    assert os.listdir(workdir) == [workdir_lib.LOCK_FILE]  # nothing written
    with pytest.raises(WorkdirError, match="in use"):
      with workdir_lib.lock(workdir):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with workdir_lib.lock(workdir) as path:  # the killed holder's lock is taken over
    assert f"pid {os.getpid()}" in open(os.path.join(path, workdir_lib.LOCK_FILE)).read()
    with workdir_lib.lock(workdir):  # re-entrant within one process (a job and its runs)
      pass


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
  f = tmp_path / "results"
  f.write_text("not a folder")
  with pytest.raises(WorkdirError, match="is a file"):
    with workdir_lib.lock(str(f)):
      pass
  assert f.read_text() == "not a folder"


def test_a_resumed_run_keeps_its_length_and_a_rerun_keeps_the_training_figures(tmp_path, data_dir):
  workdir = str(tmp_path)
  c = _smoke(data_dir, num_steps=4, checkpoint_every=2, eval_every=4)
  first = train.train_and_evaluate(c, workdir)
  assert first["steps"] == 4 and first["train_segments"] == 1
  # 4 steps, the first (compilation) untimed: 3 timed steps of 8 examples
  assert first["train_seconds"] > 0
  assert first["train_examples_per_s"] == pytest.approx(3 * 8 / first["train_seconds"])
  before = open(os.path.join(workdir, "results.json")).read()
  for steps, message in ((2, "past this run's train.num_steps=2"), (6, "keeps its length")):
    with pytest.raises(checkpoint.IncompatibleCheckpointError, match=message):
      train.train_and_evaluate(_smoke(data_dir, num_steps=steps, checkpoint_every=2, eval_every=4),
                               workdir)
  assert open(os.path.join(workdir, "results.json")).read() == before
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]

  again = train.train_and_evaluate(c, workdir)  # finished: re-evaluated, nothing trained
  for key in ("train_examples_per_s", "train_seconds", "train_segments", "train_wall_time_s"):
    assert again[key] == first[key], key
  assert again["eval_wall_time_s"] > 0 and again["test/roc_auc"] == first["test/roc_auc"]
  assert [l["split"] for l in _lines(workdir)].count("test") == 1  # superseded, not repeated


def _tfevents(path):
  """The Event protos of one TensorBoard event file (TFRecord framing)."""
  from tensorboardX.proto import event_pb2
  events, data = [], open(path, "rb").read()
  i = 0
  while i < len(data):
    (n,) = struct.unpack("<Q", data[i:i + 8])
    events.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
    i += 12 + n + 4
  return events


def test_metrics_of_a_killed_segment_are_superseded_on_resume(tmp_path, data_dir):
  workdir = str(tmp_path)
  c = _smoke(data_dir, num_steps=6, checkpoint_every=3, eval_every=3, log_every=1)
  train.train_and_evaluate(c, workdir)
  # as if killed after logging step 6 (and its test) but before checkpoint 6 reached disk
  import shutil
  shutil.rmtree(os.path.join(workdir, "checkpoints", "6"))
  os.remove(os.path.join(workdir, "results.json"))
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 7, "split": "tr')  # a line a kill cut short
  time.sleep(1.1)  # a new event file name (they carry the second)
  results = train.train_and_evaluate(c, workdir)
  lines = _lines(workdir)
  assert [l["step"] for l in lines if l["split"] == "train"] == [1, 2, 3, 4, 5, 6]
  assert [l["step"] for l in lines if l["split"] == "valid"] == [3, 6]
  assert [l["step"] for l in lines if l["split"] == "test"] == [6]
  # timed: steps 2-3 of the first segment (its steps 4-6 died with checkpoint 6) and 5-6 of
  # the second (each segment's first step compiles): 4 steps of 8 examples
  assert results["train_segments"] == 2
  assert results["train_examples_per_s"] == pytest.approx(4 * 8 / results["train_seconds"])
  tb = os.path.join(workdir, "tensorboard")
  files = sorted(os.listdir(tb), key=lambda f: os.path.getmtime(os.path.join(tb, f)))
  assert len(files) == 2
  purge = [e for e in _tfevents(os.path.join(tb, files[-1])) if e.HasField("session_log")]
  assert [(e.step, e.session_log.status) for e in purge] == [(4, 1)]  # START at resume + 1: purge


def _largest_file(folder):
  files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]
  return max(files, key=os.path.getsize)


def test_an_unreadable_newest_checkpoint_falls_back_to_an_older_one(tmp_path, data_dir, caplog):
  workdir = str(tmp_path)
  c = _smoke(data_dir, num_steps=4, checkpoint_every=2, eval_every=4)
  train.train_and_evaluate(c, workdir)
  path = _largest_file(os.path.join(workdir, "checkpoints", "4", "state"))
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  system, state, _ = checkpoint.load_trained(workdir)  # a reader skips it, saying so
  assert int(state.step) == 2
  assert any("checkpoint 4" in r.getMessage() and "using step 2" in r.getMessage() for r in caplog.records)
  os.remove(os.path.join(workdir, "results.json"))
  results = train.train_and_evaluate(c, workdir)  # a resumed run sets it aside, trains 3-4 again
  assert results["steps"] == 4
  assert os.listdir(os.path.join(workdir, "unreadable_checkpoints")) == ["4"]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
  _, state, _ = checkpoint.load_trained(workdir)
  assert int(state.step) == 4


def test_a_checkpoint_deleted_while_read_gives_way_to_the_newest(tmp_path, data_dir):
  workdir = str(tmp_path)
  train.train_and_evaluate(_smoke(data_dir, num_steps=4, checkpoint_every=2, eval_every=4), workdir)
  ckpt = checkpoint.Checkpointer(workdir, read_only=True)
  seen = []

  def read(step):  # a run still training deletes step 4 (max_to_keep) while we read it
    seen.append(step)
    if step == 4:
      import shutil
      shutil.rmtree(os.path.join(workdir, "checkpoints", "4"))
      raise FileNotFoundError("Checkpoint 4 not found")
    return ckpt.saved_meta(step)

  step, meta = ckpt.newest_readable(read)
  assert (step, seen) == (2, [4, 2]) and meta["dataset"]
  ckpt.close()


def test_a_changed_dataset_under_a_workdir_says_what_changed(tmp_path, data_dir, monkeypatch):
  workdir = str(tmp_path)
  c = _smoke(data_dir, num_steps=2, checkpoint_every=1, eval_every=2)
  train.train_and_evaluate(c, workdir)
  meta = checkpoint.load_trained_run(workdir).meta
  real = train.pipeline.load

  def load_with_a_new_tag(cfg):  # tags.csv gained a tag
    import dataclasses
    sources, info = real(cfg)
    return sources, dataclasses.replace(info, tag_names=info.tag_names + ("new_tag",))

  monkeypatch.setattr(train.pipeline, "load", load_with_a_new_tag)
  os.remove(os.path.join(workdir, "results.json"))
  with pytest.raises(checkpoint.IncompatibleCheckpointError,
                     match=r"(?s)other data.*tag_names: %d in the checkpoint, %d now: added \['new_tag'\]"
                     % (len(meta["tag_names"]), len(meta["tag_names"]) + 1)):
    train.train_and_evaluate(c, workdir)
  assert checkpoint.meta_differences({"sample_rate": 16000, "tag_names": ["a", "b"]},
                                     {"sample_rate": 22050, "tag_names": ["b", "a"]}) == [
      "  sample_rate: checkpoint has 16000, this run has 22050",
      "  tag_names: 2 in the checkpoint, 2 now: the same names in another order"]


def test_a_run_saved_before_a_field_existed_still_loads_with_its_default(tmp_path, data_dir):
  workdir = str(tmp_path)
  c = _smoke(data_dir, num_steps=1, checkpoint_every=1, eval_every=1)
  first = train.train_and_evaluate(c, workdir)
  for step in os.listdir(os.path.join(workdir, "checkpoints")):  # as an older mirjax saved it
    path = os.path.join(workdir, "checkpoints", step, "config", "metadata")
    with open(path) as f:
      saved = json.load(f)
    del saved["task"]["output"], saved["data"]["hop"], saved["train"]["select_by"]
    with open(path, "w") as f:
      json.dump(saved, f)
  run = checkpoint.load_trained_run(workdir)
  assert (run.config.task.output, run.config.data.hop, run.config.train.select_by) == ("softmax", 128, "")
  assert run.config.task.name == "tagging" and run.step == 1
  os.remove(os.path.join(workdir, "results.json"))  # the same config, run again: it re-evaluates the finished run
  again = train.train_and_evaluate(c, workdir)
  assert again["test/roc_auc"] == pytest.approx(first["test/roc_auc"], rel=1e-5)


def test_a_run_with_its_state_sharded_over_the_mesh_trains_resumes_and_loads(tmp_path, data_dir, monkeypatch):
  """mesh.fsdp through the train job: the state split over the 8 devices, checkpointed,
  resumed replicated (the finished run re-evaluates to the same figures), read back. That a
  sharded step equals a replicated one is test_train_step.py's."""
  from mirjax import sharding
  c = _smoke(data_dir, num_steps=2, checkpoint_every=1, eval_every=2)
  c.mesh.fsdp, c.mesh.fsdp_min_size = True, 64
  placed, real = [], sharding.state_shardings
  monkeypatch.setattr(sharding, "state_shardings", lambda *a: placed.append(real(*a)) or placed[-1])
  sharded = train.train_and_evaluate(c, str(tmp_path / "fsdp"))
  split = [s for s in jax.tree.leaves(placed[0]) if not s.is_fully_replicated]
  assert len(split) >= 4 and all(s.mesh.devices.size == 8 for s in split)
  run = checkpoint.load_trained_run(str(tmp_path / "fsdp"))
  assert run.step == 2 and run.config.mesh.fsdp
  c.mesh.fsdp = False  # where the state lives may change on resume: the finished run re-evaluates
  os.remove(tmp_path / "fsdp" / "results.json")
  again = train.train_and_evaluate(c, str(tmp_path / "fsdp"))
  assert again["test/roc_auc"] == pytest.approx(sharded["test/roc_auc"], abs=1e-6)


def test_readers_of_a_missing_workdir_create_nothing(tmp_path):
  typo = str(tmp_path / "typo")
  for read in (checkpoint.load_trained, checkpoint.load_config):
    with pytest.raises(WorkdirError, match="no checkpoint"):
      read(typo)
  os.makedirs(typo)
  with pytest.raises(WorkdirError, match="no checkpoint"):
    checkpoint.load_trained(typo)
  assert os.listdir(typo) == []
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  p = subprocess.run([sys.executable, "-m", "mirjax.tag", f"--workdir={tmp_path / 'other'}", "x.wav"],
                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert p.returncode != 0 and "no checkpoint" in p.stderr and "Traceback" not in p.stderr
  assert not os.path.exists(tmp_path / "other")
  assert issubclass(WorkdirError, MirjaxError)


def test_import_sets_the_cpu_flag_only_for_a_jaxlib_known_to_accept_it():
  import mirjax
  add = mirjax.xla_flags_with_cpu_defaults
  flag = f"{mirjax.YNN_FLAG}=-individual_convolution"
  assert add("", "0.10.2", None) == flag
  assert add("--xla_force_host_platform_device_count=8", "0.10.2", None).endswith(flag)
  assert add("", "0.11.0", None) == "" and add("", None, None) == ""  # unknown jaxlib: nothing
  assert add("", "0.10.2", "0") == ""  # opt-out
  mine = f"{mirjax.YNN_FLAG}=all"
  assert add(mine, "0.10.2", None) == mine  # the user's own choice stands


def test_import_of_mirjax_cannot_break_jax_with_an_unknown_flag(tmp_path):
  """A jaxlib that does not know the flag (simulated by a renamed one, which XLA would
  abort on) is never given it: mirjax and jax still start."""
  code = ("import importlib.metadata as m; real = m.version\n"
          "m.version = lambda name: '9.9.9' if name == 'jaxlib' else real(name)\n"
          "import mirjax, os, jax; assert 'ynn' not in os.environ.get('XLA_FLAGS', '')\n"
          "print(float(jax.numpy.ones(2).sum()))\n")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, JAX_PLATFORMS="cpu"),
                     capture_output=True, text=True, timeout=120)
  assert p.returncode == 0 and p.stdout.strip() == "2.0", p.stderr[-2000:]


def _fake_gpus(tmp_path, n_gpus):
  """A PATH with an nvidia-smi listing `n_gpus` GPUs and a `python` that prints its GPUs."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "nvidia-smi").write_text(
      "#!/bin/sh\n" + "".join(f"echo 'GPU {i}: Fake (UUID: GPU-{i})'\n" for i in range(n_gpus)))
  (bin_dir / "python").write_text('#!/bin/sh\necho "devices=$CUDA_VISIBLE_DEVICES"\n')
  for f in bin_dir.iterdir():
    f.chmod(0o755)
  env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES")}
  return dict(env, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=str(bin_dir / "python"),
              MIRJAX_PORT="12345")


@pytest.mark.parametrize("n_gpus, n_proc, want", [(4, 2, ["0,1", "2,3"]), (2, 2, ["0", "1"]),
                                                  (3, 2, ["0", "1"]), (1, 2, None), (0, 2, ["", ""])])
def test_local_launcher_gives_each_process_its_own_gpus_or_refuses(tmp_path, n_gpus, n_proc, want):
  env = _fake_gpus(tmp_path, n_gpus)
  p = subprocess.run(["bash", "launch/local.sh", str(n_proc), "--config=x", "--workdir=y"], cwd=ROOT,
                     env=env, capture_output=True, text=True, timeout=60)
  if want is None:
    assert p.returncode == 2 and "each process needs its own GPU" in p.stderr and not p.stdout
    p = subprocess.run(["bash", "launch/local.sh", str(n_proc), "--config=x", "--workdir=y"], cwd=ROOT,
                       env=dict(env, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=60)
    want = ["", ""]  # a CPU job, asked for
  assert p.returncode == 0, p.stderr
  assert sorted(p.stdout.split()) == sorted(f"devices={d}" for d in want)


def test_a_saved_wavenet_config_gets_the_model_fields_added_since():
  from mirjax import config as config_lib, models
  saved = {"model": {k: v for k, v in models.wavenet_config().to_dict().items() if k != "input_noise"}}
  assert config_lib.with_defaults(saved)["model"]["input_noise"] == 0.0
  tagger = {"model": {"name": "tagger"}}  # a model with sub-configs is left as saved
  assert config_lib.with_defaults(tagger)["model"] == {"name": "tagger"}
