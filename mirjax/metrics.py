"""Scalar metrics (JSONL + TensorBoard event files), progress bar and result tables.

The only module that writes logs; everything here is a no-op on processes other than 0.

metrics.jsonl and results.json are strict JSON (RFC 8259), which has no NaN or Infinity: a
non-finite float (an undefined per-tag AUC, a diverged loss) is written as null, and the
writers pass ``allow_nan=False`` so anything that escapes raises instead of writing a bare
NaN token. `read_results` turns null back into NaN.
"""
import csv
import json
import math
import os
import time

import jax
import numpy as np
from tqdm.auto import tqdm


def finite_or_none(obj):
  """``obj`` with every NaN or infinite float, at any depth of dicts, lists and tuples,
  replaced by None (JSON null); tuples become lists and numpy scalars Python numbers."""
  if isinstance(obj, dict):
    return {k: finite_or_none(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite_or_none(v) for v in obj]  # JSON has only arrays
  if isinstance(obj, (bool, np.bool_)):
    return bool(obj)
  if isinstance(obj, np.integer):
    return int(obj)
  if isinstance(obj, (float, np.floating)):
    return float(obj) if math.isfinite(obj) else None
  return obj


def dumps(obj, **kwargs) -> str:
  """Strict JSON text of ``obj``: non-finite floats as null (`finite_or_none`)."""
  return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


def _nan_for_null(obj):
  if isinstance(obj, dict):
    return {k: _nan_for_null(v) for k, v in obj.items()}
  return float("nan") if obj is None else obj


def read_results(path: str) -> dict:
  """A results.json written by `write_results`, with null (a non-finite float) as NaN."""
  with open(path) as f:
    return _nan_for_null(json.load(f))


def _scalar(v):
  """float(v) for a number or a one-element array, None for anything else (e.g. per-tag dicts)."""
  if isinstance(v, (dict, list, tuple, str)):
    return None
  v = np.asarray(v)
  return float(v) if v.size == 1 and v.dtype.kind in "biuf" else None


def supersede_after(path: str, step: int):
  """Rewrites metrics.jsonl at `path` without the lines a resumed run will write again: those
  past `step` (the checkpoint it resumes from; a killed run had logged them) and the test
  lines at `step` or later (written after training, again by a re-evaluation)."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  def keep(line):
    try:
      rec = json.loads(line)
    except json.JSONDecodeError:  # a line cut short by a kill
      return False
    return rec["step"] <= step and not (rec.get("split") == "test" and rec["step"] >= step)
  kept = [l if l.endswith("\n") else l + "\n" for l in lines if keep(l)]
  if len(kept) == len(lines):
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(kept)
  os.replace(tmp, path)  # atomic: a kill now leaves the old file or the new one


class MetricWriter:
  """Writes {name: scalar} at a step to WORKDIR/metrics.jsonl and WORKDIR/tensorboard/.

  `resume_step`: the checkpoint step a resumed run starts from. What an earlier run logged
  after it is superseded: dropped from metrics.jsonl (`supersede_after`), and purged in
  TensorBoard (the new event file starts with a purge at resume_step + 1, which TensorBoard
  applies to the earlier files), so no step appears twice.
  """

  def __init__(self, workdir: str, resume_step: int | None = None):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    from tensorboardX import SummaryWriter  # imported here: only process 0 writes
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    if resume_step is not None:
      supersede_after(path, resume_step)
    self.jsonl = open(path, "a", buffering=1)
    self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"), flush_secs=10,
                            purge_step=None if resume_step is None else resume_step + 1)

  def write(self, step: int, split: str, metrics: dict):
    if not self.active:
      return
    scalars = {k: s for k, v in metrics.items() if (s := _scalar(v)) is not None}
    self.jsonl.write(dumps({"step": int(step), "split": split, "time": time.time(), **scalars}) + "\n")
    for k, v in scalars.items():
      if math.isfinite(v):
        self.tb.add_scalar(f"{split}/{k}", v, int(step))

  def close(self):
    if self.active:
      self.jsonl.close()
      self.tb.close()


class Progress:
  """A tqdm bar over training steps showing loss and steps/s (process 0 only)."""

  def __init__(self, total: int, initial: int = 0, desc: str = "train"):
    self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                    disable=jax.process_index() != 0, mininterval=1.0)
    self.last_step, self.last_time = initial, time.perf_counter()

  def update(self, step: int, metrics: dict):
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    self.bar.set_postfix(loss=f"{float(metrics['loss']):.4f}", steps_per_s=f"{rate:.2f}", refresh=False)
    self.bar.update(step - self.bar.n)

  def close(self):
    self.bar.close()


def write_results(workdir: str, results: dict):
  """WORKDIR/results.json, WORKDIR/per_tag.csv (when there are per-tag test metrics), and a
  table of the scalar results on stdout."""
  if jax.process_index() != 0:
    return
  text = dumps(results, indent=2, sort_keys=True)  # before opening: a failure leaves no stub
  with open(os.path.join(workdir, "results.json"), "w") as f:
    f.write(text)
  if "test/per_tag_roc_auc" in results:
    write_per_tag(os.path.join(workdir, "per_tag.csv"), results["test/per_tag_roc_auc"],
                  results["test/per_tag_pr_auc"])
  print(format_table(results))


def write_json(path: str, obj):
  """Strict JSON `obj` (`dumps`, indented) to `path`; process 0 only. The text is made
  before the file is opened, so a failure leaves no stub."""
  if jax.process_index() != 0:
    return
  text = dumps(obj, indent=2)
  with open(path, "w") as f:
    f.write(text + "\n")


def write_per_tag(path: str, roc_auc: dict, pr_auc: dict):
  """A CSV with one row per tag: tag, roc_auc, pr_auc (empty where undefined), in the
  dataset's tag order."""
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["tag", "roc_auc", "pr_auc"])
    for tag, roc in roc_auc.items():
      values = (roc, pr_auc[tag])
      w.writerow([tag] + ["" if x is None or not math.isfinite(x) else f"{x:.6f}" for x in values])


def format_table(results: dict) -> str:
  """The scalar and text results as a two-column table (the dataset's name included)."""
  rows = [(k, v) for k, v in sorted(results.items()) if isinstance(v, (int, float, str))]
  width = max((len(k) for k, _ in rows), default=6)
  lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ----------"]
  lines += [f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows]
  return "\n".join(lines)


def write_comparison(workdir: str, rows: list, table: str, name: str = "comparison"):
  """WORKDIR/<name>.csv (one row per run), WORKDIR/<name>.md (`table`), and the table on
  stdout."""
  if jax.process_index() != 0:
    return
  with open(os.path.join(workdir, f"{name}.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  with open(os.path.join(workdir, f"{name}.md"), "w") as f:
    f.write(table + "\n")
  print(table)
