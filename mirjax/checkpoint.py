"""Checkpoints with orbax (the only module that imports it).

A checkpoint holds the TrainState (restored onto the current mesh's shardings), the
data iterator's state, the config that made it and what a model needs to be used on its
own (the dataset's tag or class names and sample rate). A workdir whose checkpoint was
made by an incompatible config is refused before anything is written. `load_trained_run`
rebuilds a trained run from its workdir alone; `pretrained_encoder` grafts a pre-trained
encoder into a probe. The JSON parts are
strict JSON: a non-finite float in them is stored as null (`metrics.finite_or_none`).
"""
import os
import shutil
from typing import Any, NamedTuple

from absl import logging

import jax
import orbax.checkpoint as ocp

from mirjax.errors import MirjaxError, WorkdirError
from mirjax.metrics import finite_or_none

# Config sections that may change between a run and its resumption. The run's length
# (train.num_steps, or num_epochs) may not: the learning-rate schedule is built over it.
RESUMABLE_CHANGES = ("train.log_every", "train.eval_every",
                     "train.checkpoint_every", "train.keep_checkpoints", "eval.", "mesh.", "data.data_dir",
                     "data.manual_dir", "data.read_threads", "data.worker_processes", "data.build_workers",
                     # where a probe's pre-trained encoder came from: its checkpoint holds the encoder
                     "model.pretrained")


class IncompatibleCheckpointError(MirjaxError, RuntimeError):
  """A workdir's checkpoint that this run may not resume (another config, another dataset)."""


class UnreadableCheckpointError(MirjaxError, RuntimeError):
  """No checkpoint of a workdir could be read."""


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def config_differences(saved: dict, current: dict) -> list:
  """[(key, saved, current)] for every key that differs and may not change on resume (a
  comparison's own `compare` section is never read by the run it trains)."""
  a, b = _flatten(saved), _flatten(current)
  return [(k, a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_CHANGES) and not k.startswith("compare.")]


# Fields that say where data lives or how it is read, not what a run computes: a config hash
# leaves them out, so a comparison moved to another disk still recognises its finished runs.
UNHASHED = ("data.data_dir", "data.manual_dir", "data.read_threads", "data.worker_processes",
            "data.build_workers")


def config_hash(config: dict) -> str:
  """A short hash of a config (a dict, as saved) over every field but UNHASHED: equal
  hashes mean the same experiment (results.json records it)."""
  import hashlib
  import json
  flat = {k: v for k, v in _flatten(finite_or_none(config)).items() if k not in UNHASHED}
  return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:16]


def meta_differences(saved: dict, current: dict) -> list:
  """Lines saying how the dataset a checkpoint was trained on differs from this run's
  (name, sample rate, tag or class names: what sizes and labels the model's outputs)."""
  lines = []
  for key in ("dataset", "sample_rate", "task"):
    if key in saved and saved[key] != current.get(key):
      lines.append(f"  {key}: checkpoint has {saved[key]!r}, this run has {current.get(key)!r}")
  for key in ("tag_names", "class_names"):
    a, b = list(saved.get(key, [])), list(current.get(key, []))
    if a == b:
      continue
    added, removed = [x for x in b if x not in a], [x for x in a if x not in b]
    what = []
    if added:
      what.append(f"added {added[:10]}" + (f" and {len(added) - 10} more" if len(added) > 10 else ""))
    if removed:
      what.append(f"removed {removed[:10]}" + (f" and {len(removed) - 10} more" if len(removed) > 10 else ""))
    if not what:
      what.append("the same names in another order")
    lines.append(f"  {key}: {len(a)} in the checkpoint, {len(b)} now: " + "; ".join(what))
  return lines


class Checkpointer:
  """CheckpointManager over WORKDIR/`folder` ("checkpoints"; "best" holds the step that
  train.select_by selects), keeping the newest `max_to_keep`."""

  def __init__(self, workdir: str, max_to_keep: int = 3, folder: str = "checkpoints",
               read_only: bool = False):
    """`read_only`: for commands that only read (mirjax.tag, load_trained): nothing is
    created, and a workdir without the folder is a WorkdirError."""
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, folder)
    if read_only and not os.path.isdir(self.directory):
      raise WorkdirError(
          f"no checkpoint in {workdir!r} (it has no {folder}/ folder): name the --workdir of a "
          "training run, e.g. python -m mirjax.main --config=configs/sincmodnet.py --workdir=DIR")
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only, read_only=read_only))

  def latest_step(self):
    return self.manager.latest_step()

  def steps(self) -> list:
    """The steps on disk now, newest first (re-read: another process may be writing)."""
    self.manager.reload()
    return sorted(self.manager.all_steps(), reverse=True)

  def newest_readable(self, read, set_aside: bool = False):
    """(step, read(step)) for the newest checkpoint `read` can read.

    A checkpoint that fails to read is skipped with a warning saying which and why; one
    that vanished meanwhile (a run still training deletes old ones) is skipped silently and
    the steps are re-read. IncompatibleCheckpointError (another config) is never skipped.
    `set_aside`: move unreadable ones to WORKDIR/unreadable_checkpoints/ (a resuming run,
    whose later saves would otherwise meet them), keeping them for inspection.
    Returns None when the folder holds no checkpoint; raises UnreadableCheckpointError when
    it holds some and none reads.
    """
    failures, tried = [], set()
    while True:
      candidates = [s for s in self.steps() if s not in tried]
      if not candidates:
        break
      step = candidates[0]
      tried.add(step)
      try:
        return step, read(step)
      except IncompatibleCheckpointError:
        raise
      except Exception as e:  # noqa: BLE001: any failure to read is reported, then skipped
        if step not in self.steps():
          continue  # deleted while we read it: the newest is another one now
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
        failures.append((step, reason))
        older = [s for s in self.steps() if s not in tried]
        logging.warning("mirjax: checkpoint %d in %s cannot be read (%s); %s", step, self.directory,
                        reason, f"using step {older[0]}" if older else "no older checkpoint")
        if set_aside:
          aside = os.path.join(self.workdir, "unreadable_checkpoints")
          os.makedirs(aside, exist_ok=True)
          shutil.move(os.path.join(self.directory, str(step)), os.path.join(aside, str(step)))
          self.manager.reload()
    if not failures:
      return None
    lines = "\n".join(f"  step {s}: {r}" for s, r in failures)
    raise UnreadableCheckpointError(
        f"no checkpoint in {self.directory} could be read:\n{lines}\nTrain again in a new --workdir "
        "(or restore the folder from a backup).")

  def save(self, step: int, state, data_state: dict, config: dict, meta: dict, force: bool = False):
    """Saves `state` (pytree), `data_state`, `config` and `meta` (JSON dicts) as step `step`."""
    data_state, config, meta = map(finite_or_none, (data_state, config, meta))  # orbax allows NaN
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state),
        config=ocp.args.JsonSave(config), meta=ocp.args.JsonSave(meta)), force=force)

  def saved_config(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config

  def saved_meta(self, step: int) -> dict:
    """The `meta` dict saved with step `step` (dataset name, tag or class names, rate)."""
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def restore_state(self, step: int, abstract_state):
    """The TrainState of step `step` alone, placed like `abstract_state` (no config check)."""
    return self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state))).state

  def restore(self, step: int, abstract_state, config: dict, meta: dict | None = None):
    """(state, data_state) of checkpoint `step`, placed like `abstract_state`.

    Raises IncompatibleCheckpointError, having read only the stored config and meta, when
    the checkpoint was made by a config that differs in a field that shapes the run, for
    another length (train.num_steps), or (given `meta`) on a dataset with other tags,
    classes or sample rate.
    """
    from mirjax import config as config_lib  # pylint: disable=import-outside-toplevel
    saved = self.saved_config(step)
    had = set(_flatten(saved))
    # a field added since the run saved ran as its default; one neither side has is no difference
    diffs = [d for d in config_differences(config_lib.with_defaults(saved), finite_or_none(config))  # as saved
             if d[0] in had or d[2] != "<absent>"]
    length = [d for d in diffs if d[0] == "train.num_steps"]
    if length and len(diffs) == 1:  # only the length: say what resuming means for it
      _, had, wants = length[0]
      if step > wants:
        why = (f"holds step {step}, past this run's train.num_steps={wants}: a resumed run cannot "
               "train fewer steps than it already has")
      else:
        why = (f"holds a run of train.num_steps={had} (at step {step}; its learning-rate schedule "
               f"is built over {had} steps) and this run asks for {wants}: a resumed run keeps its length")
      raise IncompatibleCheckpointError(
          f"{self.directory} {why}. Nothing was changed. Run with --config.train.num_steps={had} "
          "(and the run's num_epochs, if it set them), or train a run of the new length in a new "
          "--workdir.")
    if diffs:
      lines = "\n".join(f"  {k}: checkpoint has {a!r}, this run has {b!r}" for k, a, b in diffs[:20])
      raise IncompatibleCheckpointError(
          f"{self.directory} holds a checkpoint (step {step}) of an incompatible config:\n{lines}\n"
          "Nothing was changed. Use a new --workdir, or run with the checkpoint's settings.")
    if meta is not None:
      changed = meta_differences(self.saved_meta(step), finite_or_none(meta))
      if changed:
        raise IncompatibleCheckpointError(
            f"{self.directory} holds a checkpoint (step {step}) trained on other data than this run "
            "reads:\n" + "\n".join(changed) + "\nNothing was changed. The model's outputs are sized "
            "and named by the dataset: resume with the data as it was, or train on the new data "
            "in a new --workdir.")
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def wait_until_finished(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_with_shardings(abstract_tree, shardings):
  """ShapeDtypeStructs that carry the target shardings, for restoring onto a mesh."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      abstract_tree, shardings)


# Reading a trained run back: the System its stored config makes, its restored state.

class TrainedRun(NamedTuple):
  """What a workdir's checkpoint holds, rebuilt: its stored config, the `System` that config
  makes (mirjax.system), the restored TrainState, the stored meta (`Info.to_meta`: dataset
  name, tag or class names, rate) and the checkpoint's step."""
  config: Any
  system: Any
  state: Any
  meta: dict
  step: int


def load_trained_run(workdir: str, step: int | None = None, mesh=None, folder: str = "checkpoints") -> TrainedRun:
  """The run in `workdir` at checkpoint `step` of WORKDIR/`folder` (default: the newest that
  can be read; one deleted while it is read, by a run still training there, gives way to
  the newest then). "best" as `folder` reads the step train.select_by kept. The state is
  replicated over `mesh` (default: this process's first device). Reads only: a workdir
  without checkpoints raises WorkdirError and creates nothing. Everything comes from the
  checkpoint itself (a probe's encoder included): no other folder is read."""
  import ml_collections
  from mirjax import config as config_lib, sharding, system as system_lib
  from mirjax.data.info import Info
  mesh = sharding.make_mesh(1) if mesh is None else mesh
  ckpt = Checkpointer(workdir, read_only=True, folder=folder)

  def read(s):
    config = ml_collections.ConfigDict(config_lib.with_defaults(ckpt.saved_config(s)))
    config.lock()
    meta = ckpt.saved_meta(s)
    system = system_lib.build_system(config, Info.from_meta(meta))
    target = jax.tree.map(lambda _: sharding.replicated(mesh), system.abstract_state)
    state = ckpt.restore_state(s, abstract_with_shardings(system.abstract_state, target))
    return config, system, state, meta

  try:
    found = ckpt.newest_readable(read) if step is None else (step, read(step))
  finally:
    ckpt.close()
  if found is None:
    raise WorkdirError(
        f"no checkpoint in {workdir!r}: train a model there first, e.g. "
        f"python -m mirjax.main --config=configs/sincmodnet.py --workdir={workdir}")
  s, (config, system, state, meta) = found
  return TrainedRun(config, system, state, meta, s)


def load_trained(workdir: str, step: int | None = None, mesh=None):
  """A trained model from a workdir (`load_trained_run`), as (system, state, meta).

  Raises:
    WorkdirError: the workdir holds no checkpoint (nothing is created).
  """
  run = load_trained_run(workdir, step, mesh)
  return run.system, run.state, run.meta


def load_config(workdir: str):
  """The config of the newest readable checkpoint in `workdir`, as a locked ConfigDict."""
  import ml_collections
  ckpt = Checkpointer(workdir, read_only=True)
  try:
    found = ckpt.newest_readable(ckpt.saved_config)
  finally:
    ckpt.close()
  if found is None:
    raise WorkdirError(f"no checkpoint in {workdir!r}")
  config = ml_collections.ConfigDict(found[1])
  config.lock()
  return config


def pretrained_encoder(config, workdir: str):
  """(config, graft) of a probe or fine-tuning run (model.name "probe") about to train in
  `workdir`: config.model.encoder made the pre-trained run's, and graft
  ({collection: {"encoder": weights}}) for `system.build_system`.

  A run whose `workdir` holds a checkpoint already takes the encoder's config from that
  checkpoint and grafts nothing (its restored state holds the encoder): a probe resumes,
  and loads, without the pre-training folder, which may have moved since. Any other run
  reads model.pretrained (ConfigError when it is not a self-supervised pre-training run).
  """
  import copy
  import ml_collections
  import numpy as np
  from mirjax.errors import ConfigError
  config = copy.deepcopy(config)
  own = os.path.join(workdir, "checkpoints")
  if os.path.isdir(own) and any(name.isdigit() for name in os.listdir(own)):
    saved, graft = ml_collections.ConfigDict(load_config(workdir).to_dict()), None
  else:
    run = load_trained_run(config.model.pretrained)
    if run.system.model.__class__.__name__ != "SSLModel":
      raise ConfigError(f"model.pretrained={config.model.pretrained!r} is not a self-supervised "
                        "pre-training run (its model has no encoder with workers)")
    saved = run.config
    host = lambda t: jax.tree.map(np.asarray, t)
    graft = {"params": {"encoder": host(run.state.params["encoder"])}}
    for name, tree in run.state.model_state.items():
      if "encoder" in tree:
        graft[name] = {"encoder": host(tree["encoder"])}
  with config.unlocked():
    config.model.encoder = copy.deepcopy(saved.model.encoder)
  return config, graft
