"""The comparison job (`config.job = "compare"`): every variant of a system over several
seeds, one training run each, then a table of the test metric's mean and standard deviation.

Runs go to WORKDIR/<variant>/seed<k>/ and are ordinary training runs (checkpoints,
metrics, results.json): a killed comparison resumes where it stopped, and a finished run
is not trained again. The table is written to WORKDIR/comparison.md and every run's figure
to WORKDIR/comparison.csv.
"""
import copy
import json
import os

import jax
import numpy as np

from mirjax import config as config_lib
from mirjax import metrics
from mirjax.jobs import train


def share_compilations(workdir: str):
  """Keep compiled XLA programs in WORKDIR/xla_cache (unless JAX_COMPILATION_CACHE_DIR names
  another place): the runs of one variant differ only in their seed, so every seed after
  the first, and a resumed comparison, skip compilation."""
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "xla_cache"))


def _run(config, workdir):
  """Train `config` into `workdir` unless a finished run is there; its results."""
  path = os.path.join(workdir, "results.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  return train.train_and_evaluate(config, workdir)


def run_variant(config, variant: str, seed: int, workdir: str) -> dict:
  """results.json of one variant and seed, training it unless it has finished before."""
  c = copy.deepcopy(config)
  c.job, c.seed = "train", int(seed)
  config_lib.multiview_variant(c, variant)
  return _run(c, workdir)


def summarize(rows, names, variants) -> str:
  """A markdown table: per variant, the mean and sample standard deviation over seeds of
  each test metric, and the number of runs."""
  head = " | ".join(f"test {m} (mean ± std)" for m in names)
  lines = [f"| variant | {head} | seeds |", "|---|" + "---|" * len(names) + "---|"]
  for v in variants:
    cells = []
    for m in names:
      values = np.array([r[m] for r in rows if r["variant"] == v], np.float64)
      std = values.std(ddof=1) if len(values) > 1 else float("nan")
      cells.append(f"{values.mean():.4f} ± {std:.4f}")
    lines.append(f"| {v} | {' | '.join(cells)} | {sum(r['variant'] == v for r in rows)} |")
  return "\n".join(lines)


def compare(config, workdir: str) -> str:
  share_compilations(workdir)
  names, variants = tuple(config.compare.metrics), tuple(config.compare.variants)
  rows = []
  for variant in variants:
    for seed in config.compare.seeds:
      results = run_variant(config, variant, seed, os.path.join(workdir, variant, f"seed{seed}"))
      missing = [m for m in names if f"test/{m}" not in results]
      if missing:
        raise ValueError(f"runs report no test {missing}; set --config.compare.metrics to some of "
                         f"{sorted(k[5:] for k in results if k.startswith('test/'))}")
      rows.append({"variant": variant, "seed": int(seed), "dataset": results["dataset"],
                   **{m: float(results[f"test/{m}"]) for m in names}})
  table = (f"{rows[0]['dataset']}, {len(config.compare.seeds)} seeds, "
           f"{config.train.num_steps} steps each\n\n" + summarize(rows, names, variants))
  metrics.write_comparison(workdir, rows, table)
  return table


DOWNSTREAM_METRIC = {"tagging": "roc_auc"}  # classification tasks report accuracy


def compare_ssl(config, workdir: str) -> str:
  """The self-supervised grid (`config.job = "compare_ssl"`, configs/ssl.py:compare): each
  "encoder,workers,weighting" of config.compare.grid pre-trained with config's settings in
  WORKDIR/<point>/pretrain, then a probe on its frozen encoder per downstream task in
  WORKDIR/<point>/<task>; "random" probes an untrained encoder. Writes the table of
  downstream test scores and held-out pre-training losses."""
  share_compilations(workdir)
  rows = []
  for point in config.compare.grid:
    row = {"run": point, "variant": point}
    pretrained = ""
    if point != "random":
      encoder, workers, weighting = point.split(",")
      c = copy.deepcopy(config)
      c.job = "train"
      config_lib.ssl_variant(c, encoder, workers, weighting)
      results = _run(c, os.path.join(workdir, point.replace(",", "_"), "pretrain"))
      row["pretrain_loss"] = float(results["test/loss"])
      pretrained = os.path.join(workdir, point.replace(",", "_"), "pretrain")
      encoder_name = encoder
    else:
      row["pretrain_loss"] = float("nan")
      encoder_name = config.model.encoder.name
    for task in config.compare.downstream:
      p = config_lib.ssl("probe", encoder=encoder_name, downstream=task)
      p.data = copy.deepcopy(config.data)
      p.data.label = "" if task == "tagging" else task
      p.seed, p.eval = config.seed, copy.deepcopy(config.eval)
      p.train.batch_size = config.train.batch_size
      p.train.num_steps = config.compare.probe_steps
      p.train.eval_every = p.train.checkpoint_every = config.compare.probe_steps
      p.model.pretrained = pretrained
      metric = DOWNSTREAM_METRIC.get(task, "accuracy")
      results = _run(p, os.path.join(workdir, point.replace(",", "_"), f"probe_{task}"))
      row[f"{task}_{metric}"] = float(results[f"test/{metric}"])
    rows.append(row)
  cols = [k for k in rows[0] if k not in ("run", "variant")]
  lines = ["| encoder, workers, weighting | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
  lines += [f"| {r['run']} | " + " | ".join(f"{r[k]:.4f}" for k in cols) + " |" for r in rows]
  table = (f"self-supervised pre-training ({config.train.num_steps} steps) -> frozen-encoder probes "
           f"({config.compare.probe_steps} steps); test scores\n\n" + "\n".join(lines))
  metrics.write_comparison(workdir, [{k: v for k, v in r.items() if k != "variant"} for r in rows], table)
  return table
