"""The modulation-rate analysis (`config.job = "modulation_rates"`, configs/sincmodnet.py:rates).

"A Modulation Front-End for Music Audio Tagging" (arXiv:2105.11836) analyses how each tag
suffers when the time-frequency bands are subsampled by the modulation filters at a
progressively reduced rate. This job takes one trained ModNet / SincModNet run (the
config trained into WORKDIR/trained, or `config.analysis.trained`, a finished workdir)
and scores its test split with every modulation band kept at `rate x its bandwidth` Hz
(`mod_subsample`, the front-end's option; 0 keeps every frame), for each rate of
`config.analysis.rates`. The weights are the trained ones throughout: what changes is
only how much temporal detail of each modulation band reaches the back-end.

Writes WORKDIR/modulation_rates.csv (one row per tag, one column per rate, and the macro
average), WORKDIR/modulation_rates.md (the same as a table) and
WORKDIR/modulation_rates.png (per-tag ROC-AUC against the rate).
"""
import copy
import functools
import os

import jax
import numpy as np

from mirjax import metrics, sharding, steps
from mirjax.data import pipeline
from mirjax.jobs import compare, train
from mirjax.checkpoint import load_config, load_trained_run
from mirjax.system import build_system
from mirjax.errors import ConfigError


def _trained(config, workdir):
  """Workdir of the trained run: config.analysis.trained, or the config trained into
  WORKDIR/trained (reused once finished)."""
  if config.analysis.trained:
    if not os.path.isdir(config.analysis.trained):
      raise ConfigError(f"config.analysis.trained={config.analysis.trained!r} is not a folder: "
                       "name the --workdir of a finished ModNet or SincModNet run")
    return config.analysis.trained
  c = copy.deepcopy(config)
  with c.unlocked():
    c.job = "train"
  path = os.path.join(workdir, "trained")
  compare._run(c, path)  # pylint: disable=protected-access
  return path


def score_at_rates(trained: str, rates, split: str = "test") -> dict:
  """{rate: task metrics of `split`} of the newest checkpoint in `trained`, its front-end's
  `mod_subsample` set to each rate in turn."""
  saved = load_config(trained)
  if "mod_subsample" not in saved.model.get("frontend", {}):
    raise ConfigError(f"the run in {trained!r} has no modulation front-end (model "
                     f"{saved.model.name!r}): analyse a ModNet or SincModNet run")
  mesh = sharding.make_mesh(saved.mesh.num_devices)
  run = load_trained_run(trained, mesh=mesh)  # the rate has no parameters: one state serves all
  saved = run.config
  sources, info = pipeline.load(saved.data)
  if split not in sources:
    raise ConfigError(f"the dataset {info.name} has no {split!r} split")
  out = {}
  for rate in rates:
    c = copy.deepcopy(saved)
    c.model.frontend.mod_subsample = float(rate)
    system = build_system(c, info)
    eval_step = jax.jit(functools.partial(steps.eval_step, model=system.model, task=system.task),
                        out_shardings=sharding.batch_sharding(mesh))
    out[float(rate)] = train.evaluate(run.state, sources[split], eval_step=eval_step, task=system.task,
                                      mesh=mesh, cfg=c, crop=system.crop)
  return out


def table(per_rate: dict, tag_names) -> tuple[list, str]:
  """(csv rows, markdown) of per-tag ROC-AUC (rows) at each rate (columns), macro first."""
  rates = list(per_rate)
  label = lambda r: "every frame" if r <= 0 else f"{r:g} x bandwidth"
  rows = [{"tag": "macro ROC-AUC", **{label(r): per_rate[r]["roc_auc"] for r in rates}}]
  rows += [{"tag": t, **{label(r): per_rate[r]["per_tag_roc_auc"][t] for r in rates}} for t in tag_names]
  head = "| tag | " + " | ".join(label(r) for r in rates) + " |"
  lines = [head, "|---|" + "---|" * len(rates)]
  fmt = lambda v: "-" if v is None or not np.isfinite(v) else f"{v:.4f}"
  lines += ["| " + r["tag"] + " | " + " | ".join(fmt(r[label(x)]) for x in rates) + " |" for r in rows]
  return rows, "\n".join(lines)


def plot(per_rate: dict, tag_names, path: str, title: str = "") -> str:
  """Per-tag ROC-AUC against the kept rate (x bandwidth, log axis; 'every frame' at the right)."""
  from matplotlib.figure import Figure  # not pyplot: leaves the user's backend alone
  rates = sorted(per_rate, key=lambda r: np.inf if r <= 0 else r)
  finite = [r for r in rates if r > 0]
  full_x = max(finite) * 2 if finite else 1.0
  xs = [full_x if r <= 0 else r for r in rates]
  fig = Figure(figsize=(8, 5))
  ax = fig.subplots()
  for t in tag_names:
    ax.plot(xs, [per_rate[r]["per_tag_roc_auc"][t] for r in rates], marker=".", linewidth=0.8, label=t)
  ax.plot(xs, [per_rate[r]["roc_auc"] for r in rates], color="k", linewidth=2.5, label="macro")
  ax.set_xscale("log")
  ax.set_xticks(xs, [("every\nframe" if r <= 0 else f"{r:g}") for r in rates])
  ax.set_xlabel("rate kept per modulation band (x its bandwidth)")
  ax.set_ylabel("test ROC-AUC")
  ax.legend(fontsize=6, ncol=2, loc="lower right")
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def analyse(config, workdir: str) -> str:
  """Train (or reuse) the run, score it at every rate, write the csv, table and plot."""
  compare.share_compilations(workdir)
  trained = _trained(config, workdir)
  rates = tuple(float(r) for r in config.analysis.rates)
  if not rates:
    raise ConfigError("config.analysis.rates is empty: name the rates to analyse, e.g. (0, 8, 4, 2, 1)")
  per_rate = score_at_rates(trained, rates, config.analysis.split)
  tag_names = list(per_rate[rates[0]]["per_tag_roc_auc"])
  rows, md = table(per_rate, tag_names)
  md = (f"per-tag {config.analysis.split} ROC-AUC of {trained} with every modulation band kept "
        f"at rate x its bandwidth (held between kept frames)\n\n" + md)
  metrics.write_comparison(workdir, rows, md, name="modulation_rates")
  if jax.process_index() == 0:
    plot(per_rate, tag_names, os.path.join(workdir, "modulation_rates.png"),
         title=f"{config.analysis.split} ROC-AUC against the modulation rate kept")
  return md
