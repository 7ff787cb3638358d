"""Checkpoints with orbax (the only module that imports it).

A checkpoint holds the TrainState (restored onto the current mesh's shardings), the
data iterator's state, the config that made it and what a model needs to be used on its
own (the dataset's tag or class names and sample rate). A workdir whose checkpoint was
made by an incompatible config is refused before anything is written. The JSON parts are
strict JSON: a non-finite float in them is stored as null (`metrics.finite_or_none`).
"""
import os

import jax
import orbax.checkpoint as ocp

from mirjax.metrics import finite_or_none

# Config sections that may change between a run and its resumption.
RESUMABLE_CHANGES = ("train.num_steps", "train.num_epochs", "train.log_every", "train.eval_every",
                     "train.checkpoint_every", "train.keep_checkpoints", "eval.", "mesh.", "data.data_dir",
                     "data.manual_dir", "data.read_threads")


class IncompatibleCheckpointError(RuntimeError):
  pass


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def config_differences(saved: dict, current: dict) -> list:
  """[(key, saved, current)] for every key that differs and may not change on resume."""
  a, b = _flatten(saved), _flatten(current)
  return [(k, a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_CHANGES)]


class Checkpointer:
  """CheckpointManager over WORKDIR/`folder` ("checkpoints"; "best" holds the step that
  train.select_by selects), keeping the newest `max_to_keep`."""

  def __init__(self, workdir: str, max_to_keep: int = 3, folder: str = "checkpoints"):
    self.directory = os.path.join(os.path.abspath(workdir), folder)
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self):
    return self.manager.latest_step()

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

  def restore(self, step: int, abstract_state, config: dict):
    """(state, data_state) of checkpoint `step`, placed like `abstract_state`.

    Raises IncompatibleCheckpointError, having read only the stored config, when the
    checkpoint was made by a config that differs in a field that shapes the run.
    """
    diffs = config_differences(self.saved_config(step), finite_or_none(config))  # as saved
    if diffs:
      lines = "\n".join(f"  {k}: checkpoint has {a!r}, this run has {b!r}" for k, a, b in diffs[:20])
      raise IncompatibleCheckpointError(
          f"{self.directory} holds a checkpoint (step {step}) of an incompatible config:\n{lines}\n"
          "Nothing was changed. Use a new --workdir, or run with the checkpoint's settings.")
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
