"""The comparison job (`config.job = "compare"`): every variant of a system over several
seeds, one training run each, then a table of the test metric's mean and standard deviation.

Runs go to WORKDIR/<variant>/seed<k>/ and are ordinary training runs (checkpoints,
metrics, results.json): a killed comparison resumes where it stopped, and a finished run
is not trained again. The table is written to WORKDIR/comparison.md and every run's figure
to WORKDIR/comparison.csv.
"""
import copy
import csv
import json
import os

import numpy as np

from mirjax import config as config_lib
from mirjax import metrics
from mirjax.jobs import train


def run_variant(config, variant: str, seed: int, workdir: str) -> dict:
  """results.json of one variant and seed, training it unless it has finished before."""
  path = os.path.join(workdir, "results.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  c = copy.deepcopy(config)
  c.job, c.seed = "train", int(seed)
  config_lib.multiview_variant(c, variant)
  return train.train_and_evaluate(c, workdir)


def summarize(rows, metric: str, variants) -> str:
  """A markdown table: variant, mean and standard deviation of `metric` over seeds, runs."""
  lines = [f"| variant | test {metric} (mean) | std | seeds |", "|---|---|---|---|"]
  for v in variants:
    values = np.array([r[metric] for r in rows if r["variant"] == v], np.float64)
    std = values.std(ddof=1) if len(values) > 1 else float("nan")
    lines.append(f"| {v} | {values.mean():.4f} | {std:.4f} | {len(values)} |")
  return "\n".join(lines)


def compare(config, workdir: str) -> str:
  metric, variants = config.compare.metric, tuple(config.compare.variants)
  rows = []
  for variant in variants:
    for seed in config.compare.seeds:
      results = run_variant(config, variant, seed, os.path.join(workdir, variant, f"seed{seed}"))
      key = f"test/{metric}"
      if key not in results:
        raise ValueError(f"runs report no {key!r}; set --config.compare.metric to one of "
                         f"{sorted(k[5:] for k in results if k.startswith('test/'))}")
      rows.append({"variant": variant, "seed": int(seed), metric: float(results[key]),
                   "dataset": results["dataset"]})
  table = (f"{rows[0]['dataset']}, {len(config.compare.seeds)} seeds, "
           f"{config.train.num_steps} steps each\n\n" + summarize(rows, metric, variants))
  metrics.write_comparison(workdir, rows, table)
  return table
