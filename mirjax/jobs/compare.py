"""The comparison job (`config.job = "compare"`): every variant of a system over several
seeds, one training run each, then a table of the test metric's mean and standard deviation.

A variant is a named override set applied to the one config (mirjax/overrides.py):
``config.compare.variants`` names them in table order, ``config.compare.overrides.<name>``
holds each (configs/rawgrid.py). A config without ``compare.overrides`` names multi-view
variants instead (`config.multiview_variant`, configs/multiview.py).

Runs go to WORKDIR/<variant>/seed<k>/ and are ordinary training runs (checkpoints,
metrics, results.json): a killed comparison resumes where it stopped, and a finished run
is not trained again, provided its config is this one (results.json's config_hash;
a run of another config is re-checked against its checkpoint, never reused silently). The table is written to WORKDIR/comparison.md and every run's figure
to WORKDIR/comparison.csv.
"""
import copy
import os

import jax
import numpy as np
from absl import logging

from mirjax import config as config_lib
from mirjax import checkpoint, metrics
from mirjax import overrides as overrides_lib
from mirjax.jobs import train
from mirjax.errors import ConfigError


def share_compilations(workdir: str):
  """Keep compiled XLA programs in WORKDIR/xla_cache (unless JAX_COMPILATION_CACHE_DIR names
  another place): the runs of one variant differ only in their seed, so every seed after
  the first, and a resumed comparison, skip compilation."""
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "xla_cache"))


def _run(config, workdir):
  """Train `config` into `workdir` unless a run of the same config (its `config_hash`)
  finished there; its results. A finished run of another config is never reused silently:
  training it again resumes from its checkpoint, which re-evaluates it when only evaluation
  settings changed and otherwise refuses with the fields that differ."""
  path = os.path.join(workdir, "results.json")
  if os.path.exists(path):
    done = metrics.read_results(path)  # null (a non-finite result) read back as NaN
    if done.get("config_hash") == checkpoint.config_hash(config.to_dict()):
      return done
    logging.warning("mirjax: %s finished with another config than this one; checking it against "
                    "its checkpoint", workdir)
  return train.train_and_evaluate(config, workdir)


def variant_config(config, variant: str, seed: int):
  """The training config of one variant and seed: its override set applied to `config`
  (a ValueError names a missing variant or a path the config lacks), or the multi-view
  variant of that name when the config has no ``compare.overrides``."""
  c = copy.deepcopy(config)
  c.job, c.seed = "train", int(seed)
  if "overrides" not in config.compare:
    return config_lib.multiview_variant(c, variant)
  if variant not in config.compare.overrides:
    raise ConfigError(f"compare.variants names {variant!r}, which compare.overrides lacks; it has "
                     f"{sorted(config.compare.overrides)}")
  overrides_lib.apply(c, config.compare.overrides[variant], variant)
  # an ordinary run: editing the comparison later (seeds, variants) must not make its
  # checkpoints "incompatible" on resumption
  with c.unlocked():
    del c["compare"]
  return c


def run_variant(config, variant: str, seed: int, workdir: str) -> dict:
  """results.json of one variant and seed, training it unless it has finished before."""
  return _run(variant_config(config, variant, seed), workdir)


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
  for variant in variants:  # every override set applies, before hours of training
    variant_config(config, variant, 0)
  rows = []
  # Seed by seed, every variant: a comparison stopped part-way has as many runs of each.
  for seed in config.compare.seeds:
    for variant in variants:
      results = run_variant(config, variant, seed, os.path.join(workdir, variant, f"seed{seed}"))
      missing = [m for m in names if f"test/{m}" not in results]
      if missing:
        raise ConfigError(f"runs report no test {missing}; set --config.compare.metrics to some of "
                         f"{sorted(k[5:] for k in results if k.startswith('test/'))}")
      rows.append({"variant": variant, "seed": int(seed), "dataset": results["dataset"],
                   "steps": results["steps"], "selection": results.get("selection", "last step"),
                   **{m: float(results[f"test/{m}"]) for m in names}})
    done = [v for v in variants if any(r["variant"] == v for r in rows)]
    steps = sorted({r["steps"] for r in rows})
    table = (f"{rows[0]['dataset']}, seeds {sorted({r['seed'] for r in rows})} of "
             f"{list(config.compare.seeds)}, {'/'.join(map(str, steps))} steps each, tested at: "
             f"{'; '.join(sorted({r['selection'].split(' (')[0] for r in rows}))}\n\n"
             + summarize(rows, names, done))
    metrics.write_comparison(workdir, rows, table)  # after every seed: a killed run keeps its table
  if "blend" in variants and jax.process_index() == 0:
    from mirjax.jobs import blend_weights
    blend_weights.plot(workdir)
  return table


DOWNSTREAM_METRIC = {"tagging": "roc_auc"}  # classification tasks report accuracy


def probe_config(config, encoder: str, task: str, pretrained: str):
  """The config of one probe of the self-supervised grid: the grid's `config` (so every
  override given to the grid reaches it: data, seed, batch, evaluation, mesh, logging) with
  a frozen-encoder probe's model and `task`'s head, then `config.compare.probe` applied."""
  p = config_lib.ssl("probe", encoder=encoder, downstream=task)
  c = copy.deepcopy(config)
  with c.unlocked():
    c.job, c.model, c.task = "train", p.model, p.task
    c.optim.combine = p.optim.combine
    c.data.label = p.data.label
    c.model.pretrained = pretrained
    del c["compare"]
  return overrides_lib.apply(c, config.compare.probe, "compare.probe")


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
      p = probe_config(config, encoder_name, task, pretrained)
      metric = DOWNSTREAM_METRIC.get(task, "accuracy")
      results = _run(p, os.path.join(workdir, point.replace(",", "_"), f"probe_{task}"))
      row[f"{task}_{metric}"] = float(results[f"test/{metric}"])
    rows.append(row)
  cols = [k for k in rows[0] if k not in ("run", "variant")]
  lines = ["| encoder, workers, weighting | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
  lines += [f"| {r['run']} | " + " | ".join(f"{r[k]:.4f}" for k in cols) + " |" for r in rows]
  table = (f"self-supervised pre-training ({config.train.num_steps} steps) -> frozen-encoder probes "
           f"({config.compare.probe.train.num_steps} steps); test scores\n\n" + "\n".join(lines))
  metrics.write_comparison(workdir, [{k: v for k, v in r.items() if k != "variant"} for r in rows], table)
  return table
