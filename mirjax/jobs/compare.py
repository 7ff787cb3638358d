"""The comparison job (`config.job = "compare"`): every variant of a system over several
seeds, one training run each, then a table of the test metric's mean and standard deviation.

A variant is a named override set applied to the one config (mirjax/overrides.py):
``config.compare.variants`` names them in table order, ``config.compare.overrides.<name>``
holds each (configs/rawgrid.py, configs/multiview.py). The self-supervised grid
(`compare_ssl`, configs/ssl.py) is the same with a second stage: each pre-training run's
encoder probed on downstream tasks.

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

from mirjax import checkpoint, metrics, models
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
  if config.job == "kmeans":  # features learned, then the MLP on them (jobs/kmeans.py)
    from mirjax.jobs import kmeans  # pylint: disable=import-outside-toplevel
    return kmeans.run(config, workdir)
  return train.train_and_evaluate(config, workdir)


def variant_config(config, variant: str, seed: int):
  """The training config of one variant and seed: its override set applied to `config`
  (a ConfigError names a missing variant or a path the config lacks)."""
  c = copy.deepcopy(config)
  # a training run, or the job config.compare.variant_job names ("kmeans": configs/kmeans.py)
  c.job, c.seed = config.compare.get("variant_job", "train"), int(seed)
  if "overrides" not in config.compare:
    raise ConfigError("a comparison needs config.compare.overrides: an override set per variant "
                      "(mirjax/overrides.py; configs/rawgrid.py is an example)")
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
  each test metric ("n/a" where the variant reports none), the mean wall time of a run
  (training, set-up and evaluation) and the number of runs."""
  head = " | ".join(f"test {m} (mean ± std)" for m in names)
  lines = [f"| variant | {head} | wall time per run (s) | seeds |", "|---|" + "---|" * len(names) + "---|---|"]
  for v in variants:
    cells = []
    for m in names + ("wall_time_s",):
      values = np.array([r.get(m, float("nan")) for r in rows if r["variant"] == v], np.float64)
      if np.isnan(values).all():
        cells.append("n/a")
        continue
      std = values.std(ddof=1) if len(values) > 1 else float("nan")
      cells.append(f"{values.mean():.0f}" if m == "wall_time_s" else f"{values.mean():.4f} ± {std:.4f}")
    lines.append(f"| {v} | {' | '.join(cells)} | {sum(r['variant'] == v for r in rows)} |")
  return "\n".join(lines)


def compare(config, workdir: str) -> str:
  share_compilations(workdir)
  names, variants = tuple(config.compare.metrics), tuple(config.compare.variants)
  for variant in variants:  # every override set applies, before hours of training
    variant_config(config, variant, 0)
  rows, reported = [], set()
  # Seed by seed, every variant: a comparison stopped part-way has as many runs of each.
  for seed in config.compare.seeds:
    for variant in variants:
      results = run_variant(config, variant, seed, os.path.join(workdir, variant, f"seed{seed}"))
      reported.update(k[5:] for k in results if k.startswith("test/"))
      # a metric a variant does not report (a voice-only speaker model has no visual EER) is NaN
      rows.append({"variant": variant, "seed": int(seed), "dataset": results["dataset"],
                   "steps": results["steps"], "selection": results.get("selection", "last step"),
                   "wall_time_s": float(results.get("wall_time_s", float("nan"))),
                   **{m: float(results.get(f"test/{m}", float("nan"))) for m in names}})
    missing = [m for m in names if m not in reported]
    if missing:
      raise ConfigError(f"no run reports test {missing}; set --config.compare.metrics to some of "
                        f"{sorted(reported)}")
    done = [v for v in variants if any(r["variant"] == v for r in rows)]
    steps = sorted({r["steps"] for r in rows})
    table = (f"{rows[0]['dataset']}, seeds {sorted({r['seed'] for r in rows})} of "
             f"{list(config.compare.seeds)}, {'/'.join(map(str, steps))} steps each, tested at: "
             f"{'; '.join(sorted({r['selection'].split(' (')[0] for r in rows}))}\n\n"
             + summarize(rows, names, done))
    metrics.write_comparison(workdir, rows, table)  # after every seed: a killed run keeps its table
  blended = [v for v in variants if variant_config(config, v, 0).optim.combine.name == "gradient_blending"]
  if blended and jax.process_index() == 0:
    from mirjax.jobs import blend_weights
    for variant in blended:
      blend_weights.plot(workdir, variant)
  return table


DOWNSTREAM_METRIC = {"tagging": "roc_auc"}  # classification tasks report accuracy


def probe_config(config, pretraining, task: str, pretrained: str):
  """The config of one probe of the self-supervised grid: `pretraining` (the grid's
  `config` with a point's overrides, so every override given to the grid reaches the probe:
  data, seed, batch, evaluation, mesh, logging) with a frozen-encoder probe of its encoder
  (grafted from the run in `pretrained`; "" leaves it untrained), then the override sets
  config.compare.heads.<task> and config.compare.probe."""
  model = models.probe_config(pretraining.model.encoder.name)
  model.encoder = copy.deepcopy(pretraining.model.encoder)
  model.pretrained = pretrained
  c = copy.deepcopy(pretraining)
  with c.unlocked():
    c.job, c.model = "train", model
    if "compare" in c:
      del c["compare"]
  if task not in config.compare.heads:
    raise ConfigError(f"compare.downstream names {task!r}, which compare.heads lacks; it has "
                      f"{sorted(config.compare.heads)}")
  overrides_lib.apply(c, config.compare.heads[task], f"compare.heads.{task}")
  return overrides_lib.apply(c, config.compare.probe, "compare.probe")


def compare_ssl(config, workdir: str) -> str:
  """The self-supervised grid (`config.job = "compare_ssl"`, configs/ssl.py:compare): each
  variant of config.compare.variants pre-trained in WORKDIR/<variant>/pretrain (its override
  set applied to config, as `compare` does), then a probe on its frozen encoder per
  downstream task in WORKDIR/<variant>/probe_<task>; a variant of config.compare.untrained
  probes the config's encoder untrained. Writes the table of downstream test scores and
  held-out pre-training losses."""
  share_compilations(workdir)
  rows = []
  untrained = tuple(config.compare.get("untrained", ()))
  for variant in config.compare.variants:  # every override set applies, before hours of training
    pretraining = config if variant in untrained else variant_config(config, variant, config.seed)
    for task in config.compare.downstream:
      probe_config(config, pretraining, task, "")
  for variant in config.compare.variants:
    row = {"variant": variant}
    if variant in untrained:
      pretraining, pretrained = config, ""
      row["pretrain_loss"] = float("nan")
    else:
      pretraining = variant_config(config, variant, config.seed)
      pretrained = os.path.join(workdir, variant, "pretrain")
      row["pretrain_loss"] = float(_run(pretraining, pretrained)["test/loss"])
    for task in config.compare.downstream:
      p = probe_config(config, pretraining, task, pretrained)
      metric = DOWNSTREAM_METRIC.get(task, "accuracy")
      results = _run(p, os.path.join(workdir, variant, f"probe_{task}"))
      row[f"{task}_{metric}"] = float(results[f"test/{metric}"])
    rows.append(row)
  cols = [k for k in rows[0] if k != "variant"]
  lines = ["| variant | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
  lines += [f"| {r['variant']} | " + " | ".join(f"{r[k]:.4f}" for k in cols) + " |" for r in rows]
  table = (f"self-supervised pre-training ({config.train.num_steps} steps) -> frozen-encoder probes "
           f"({config.compare.probe.train.num_steps} steps); test scores\n\n" + "\n".join(lines))
  metrics.write_comparison(workdir, rows, table)
  return table
