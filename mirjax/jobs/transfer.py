"""The transfer job (`config.job = "transfer"`, configs/explain.py:transfer): do a model's
layer features serve tasks it was not trained on, and do they beat the same model untrained
and hand-crafted features? (after Yanchenko et al., arXiv:2106.00110)

  python -m mirjax.main --config=configs/explain.py:transfer --config.sources=workdirs/a,workdirs/b --workdir=workdirs/transfer

For every target task of `config.tasks` (an embedded-data label: "tags", "tempo",
"texture", "drums", "composer"; or a dataset whose folder `config.manual_dirs.<name>` names:
"gtzan", "esc50", "nsynth", "mtat"), every model (each trained source run of
`config.sources` at `config.step`, and each distinct architecture among them initialised
untrained from every seed of `config.untrained_seeds`) and every compared layer
(`similarity.compared_layers`, pooled as the similarity job pools them), probes of
`config.probes` ("linear", "mlp"; mirjax/evaluation/probes.py) are fitted on the task's
train split, their weight decay chosen on its valid split, and scored on its test split:
accuracy for classes, macro ROC-AUC for tags. The hand-crafted feature sets of the
similarity job get the same probes. Every probe sees the same examples, the same budget
(`config.probe.steps` full-batch Adam steps) and the same selection.

Writes WORKDIR/transfer.csv (one row per task, model, layer, probe and seed: valid and test
metric, weight decay), WORKDIR/transfer.md (the test metric, untrained seeds as mean ±
std), WORKDIR/transfer.png (per task: test metric by layer, one line per model and probe,
hand-crafted features as horizontal lines) and WORKDIR/transfer.json.
"""
import copy
import csv
import functools
import json
import os

import jax
import numpy as np
from tqdm.auto import tqdm

from mirjax import metrics, models, sharding, workdir as workdir_lib
from mirjax.audio import scattering
from mirjax.data import pipeline
from mirjax.errors import ConfigError
from mirjax.evaluation import probes
from mirjax.jobs import embed, evaluate, similarity, train

EMBEDDED_TASKS = ("tags", "tempo", "texture", "drums", "composer")
DATASET_TASKS = ("gtzan", "esc50", "nsynth", "mtat")
SPLITS = ("train", "valid", "test")


def _sources_of(config) -> list:
  entries = [config.sources] if isinstance(config.sources, str) else config.sources
  return [s.strip() for entry in entries for s in str(entry).split(",") if s.strip()]


def _tasks_of(config) -> list:
  return [t.strip() for entry in config.tasks for t in str(entry).split(",") if t.strip()]


def check(config, workdir: str):
  """Settings that cannot work, before anything is loaded."""
  sources = _sources_of(config)
  if not sources:
    raise ConfigError("config.sources is empty: name the workdirs of trained runs, e.g. "
                      "--config.sources=workdirs/explain_shortchunk,workdirs/explain_fcn")
  for s in sources:
    c = copy.deepcopy(config)
    with c.unlocked():
      c.trained, c.splits = s, ("test",)
    evaluate.check(c, workdir)
  check_settings(config)


def check_settings(config):
  """The settings of `check` that need no source run: tasks, their folders, probes and
  feature sets (a job that trains its sources first checks these before it starts)."""
  tasks = _tasks_of(config)
  bad = [t for t in tasks if t not in EMBEDDED_TASKS + DATASET_TASKS]
  if bad or not tasks:
    raise ConfigError(f"config.tasks={tuple(config.tasks)!r}: choose among {EMBEDDED_TASKS + DATASET_TASKS}")
  for t in tasks:
    if t in DATASET_TASKS and not config.manual_dirs.get(t):
      raise ConfigError(f"task {t!r} reads its folder from config.manual_dirs.{t}: set "
                        f"--config.manual_dirs.{t}=DIR")
  bad = [p for p in config.probes if p not in probes.KINDS]
  if bad or not config.probes:
    raise ConfigError(f"config.probes={tuple(config.probes)!r}: choose among {probes.KINDS}")
  bad = [f for f in config.features if f not in similarity.FEATURE_SETS]
  if bad:
    raise ConfigError(f"config.features={tuple(config.features)!r}: choose among {similarity.FEATURE_SETS}")


def task_data(base_data, task: str, config):
  """The data config of a target task: the source run's embedded data with the task's label,
  or a dataset folder."""
  d = copy.deepcopy(base_data)
  with d.unlocked():
    if task in EMBEDDED_TASKS:
      d.name = "embedded"
      d.label = "" if task == "tags" else task
    else:
      d.name, d.manual_dir, d.label = task, config.manual_dirs[task], ""
  return d


def _labels(source, field: str) -> np.ndarray:
  return np.stack([np.asarray(source[i][field]) for i in range(len(source))])


def architecture(run_config) -> str:
  """A short name of a run's model: front-end and back-end kinds."""
  m = run_config.model
  return f"{m.frontend.name}+{m.backend.name}" if "frontend" in m and "backend" in m else m.name


def transfer(config, workdir: str, extra_sets=None) -> dict:
  """Fits every probe and writes the tables and the plot to WORKDIR; returns transfer.json's
  contents. `extra_sets(task, sources, info)`, if given, adds feature sets made elsewhere
  (e.g. unsupervised features): {(model name, seed or None, layer): {split: (N, D)}}, probed
  like the rest."""
  check(config, workdir)
  with workdir_lib.lock(workdir, primary=jax.process_index() == 0):
    mesh = sharding.make_mesh(config.mesh.num_devices)
    replicated, batch_sharding = sharding.replicated(mesh), sharding.batch_sharding(mesh)
    step_choice = evaluate.step_of(config)
    # every model: (name, source label, seed or None, run, state)
    model_list, arch_seen = [], set()
    for path in _sources_of(config):
      run = evaluate.load_run(path, step_choice, mesh)
      trained_on = run.meta.get("dataset", "?")
      arch = architecture(run.config)
      model_list.append((f"{arch} trained on {trained_on}", arch, int(run.config.seed), run, run.state))
      if arch not in arch_seen:
        arch_seen.add(arch)
        for seed in config.untrained_seeds:
          state = jax.device_put(run.system.make_state(jax.random.key(int(seed))), replicated)
          model_list.append((f"{arch} untrained", arch, int(seed), run, state))
    first = model_list[0][3]
    crop = first.system.crop
    layer_steps = {}  # model name -> (layers probed, the jitted step giving them), made once
    for name, _, _, run, _ in model_list:
      if name in layer_steps:
        continue
      names = similarity.compared_layers(embed.layer_widths(
          run.system.model, {"params": run.state.params, **run.state.model_state},
          models.example_inputs(run.config.model, run.system.crop)))
      layers = [n for n in names if not config.layers or n in config.layers]
      shardings = jax.tree.map(lambda _: replicated, run.system.abstract_state)
      layer_steps[name] = (layers, jax.jit(
          functools.partial(similarity.layer_step, model=run.system.model, names=tuple(layers)),
          in_shardings=(shardings, batch_sharding), out_shardings=batch_sharding))
    rows, feature_cache = [], {}
    for task in _tasks_of(config):
      cfg = evaluate.job_config(first.config, config)
      with cfg.unlocked():
        cfg.data = task_data(cfg.data, task, config)
      sources, info = pipeline.load(cfg.data)
      missing = [s for s in SPLITS if s not in sources]
      if missing:
        raise ConfigError(f"task {task}: the dataset {info.name} has no {missing} split(s); the probes "
                          "need train, valid and test")
      kind = "classification" if info.class_names else "tagging"
      field = "label" if info.class_names else "tags"
      n_out = len(info.class_names or info.tag_names)
      labels = {s: _labels(sources[s], field) for s in SPLITS}
      data_key = json.dumps({k: v for k, v in cfg.data.to_dict().items() if k != "label"}, sort_keys=True,
                            default=str)
      sets = {}  # (model name, seed, layer) -> {split: features}
      for index, (name, arch, seed, run, state) in enumerate(tqdm(
          model_list, desc=f"transfer {task}: features", unit="model", disable=jax.process_index() != 0,
          leave=False)):
        if run.system.crop != crop or int(run.config.data.sample_rate) != int(info.sample_rate):
          raise ConfigError(f"{name}: every source must read {crop}-sample crops at {info.sample_rate} Hz")
        layers, step = layer_steps[name]
        for split in SPLITS:
          key = (data_key, index, split)  # sources of one name (seeds of one run) are distinct models
          if key not in feature_cache:
            feature_cache[key], _ = train.run_over_split(state, sources[split], step, mesh=mesh, cfg=cfg,
                                                         crop=crop, target="")
          for layer in layers:
            if (name, seed, layer) in sets and split == SPLITS[0]:
              raise ConfigError(f"two sources are both {name!r} with seed {seed}: give them different seeds")
            sets.setdefault((name, seed, layer), {})[split] = feature_cache[key][layer]
      if config.features:
        bank = scattering.scattering_bank(crop, int(config.scattering.J), int(config.scattering.Q))
        fstep = jax.jit(functools.partial(similarity.features_step, sr=int(info.sample_rate),
                                          features=tuple(config.features), bank=bank),
                        in_shardings=(jax.tree.map(lambda _: replicated, first.system.abstract_state),
                                      batch_sharding), out_shardings=batch_sharding)
        for split in SPLITS:
          key = (data_key, "hand-crafted", None, split)
          if key not in feature_cache:
            feature_cache[key], _ = train.run_over_split(first.state, sources[split], fstep, mesh=mesh,
                                                         cfg=cfg, crop=crop, target="")
          for f in config.features:
            sets.setdefault(("hand-crafted", None, f), {})[split] = feature_cache[key][f]
      if extra_sets is not None:
        sets.update(extra_sets(task, sources, info))
      for (name, seed, layer), by_split in tqdm(sets.items(), desc=f"transfer {task}: probes", unit="layer",
                                                disable=jax.process_index() != 0, leave=False):
        for probe in config.probes:
          res = probes.fit_probe(*((by_split[s], labels[s]) for s in SPLITS), task=kind, n_out=n_out,
                                 kind=probe, l2_grid=tuple(config.probe.l2_grid), steps=int(config.probe.steps),
                                 lr=float(config.probe.learning_rate), hidden=int(config.probe.hidden))
          rows.append({"task": task, "metric": "accuracy" if kind == "classification" else "macro ROC-AUC",
                       "model": name, "seed": "" if seed is None else seed, "layer": layer, "probe": probe,
                       "valid": res.valid, "test": res.test, "l2": res.l2})
    out = {"sources": [os.path.abspath(s) for s in _sources_of(config)], "tasks": _tasks_of(config),
           "untrained_seeds": [int(s) for s in config.untrained_seeds], "probes": list(config.probes),
           "probe": config.probe.to_dict(), "rows": rows}
    if jax.process_index() == 0:
      _write(workdir, rows)
      metrics.write_json(os.path.join(workdir, "transfer.json"), out)
      print(f"transfer: {len(rows)} probes over {len(out['tasks'])} task(s) -> "
            f"{os.path.join(workdir, 'transfer.md')}, transfer.csv, transfer.png")
    return out


def summary_rows(rows) -> list:
  """One row per (task, model, layer, probe): the test metric's mean and std over seeds."""
  groups = {}
  for r in rows:
    groups.setdefault((r["task"], r["model"], r["layer"], r["probe"]), []).append(r)
  out = []
  for (task, model, layer, probe), rs in groups.items():
    tests = np.array([r["test"] for r in rs], float)
    out.append({"task": task, "metric": rs[0]["metric"], "model": model, "layer": layer, "probe": probe,
                "mean": float(np.nanmean(tests)), "std": float(np.nanstd(tests)) if len(rs) > 1 else None,
                "n": len(rs)})
  return out


def _write(workdir, rows):
  with open(os.path.join(workdir, "transfer.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, ["task", "metric", "model", "seed", "layer", "probe", "valid", "test", "l2"])
    w.writeheader()
    for r in rows:
      w.writerow({**r, "valid": f"{r['valid']:.4f}", "test": f"{r['test']:.4f}"})
  summary = summary_rows(rows)
  lines = ["| task (test metric) | model | layer | probe | test |", "|---|---|---|---|---|"]
  for s in summary:
    value = f"{s['mean']:.3f}" + (f" ± {s['std']:.3f} ({s['n']} seeds)" if s["std"] is not None else "")
    lines.append(f"| {s['task']} ({s['metric']}) | {s['model']} | {s['layer']} | {s['probe']} | {value} |")
  with open(os.path.join(workdir, "transfer.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  plot(os.path.join(workdir, "transfer.png"), summary)


def plot(path: str, summary) -> None:
  """Per task: the test metric of each model's layers (x: depth), one line per model and
  probe, hand-crafted feature sets as dashed horizontal lines."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  tasks = list(dict.fromkeys(s["task"] for s in summary))
  fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    mine = [s for s in summary if s["task"] == task]
    for (model, probe) in dict.fromkeys((s["model"], s["probe"]) for s in mine if s["model"] != "hand-crafted"):
      line = [s for s in mine if s["model"] == model and s["probe"] == probe]
      ax.errorbar(range(len(line)), [s["mean"] for s in line], yerr=[s["std"] or 0 for s in line],
                  marker="o", ms=3, capsize=2, label=f"{model} ({probe})")
    for s in (s for s in mine if s["model"] == "hand-crafted" and s["probe"] == "linear"):
      ax.axhline(s["mean"], ls="--", lw=0.8, color="grey")
      ax.text(0, s["mean"], s["layer"], fontsize=6, color="grey", va="bottom")
    ax.set_title(f"{task} ({mine[0]['metric']})", fontsize=9)
    ax.set_xlabel("layer (block 0 ... embedding)")
  axes[0][0].set_ylabel("test metric")
  handles, names = axes[0][0].get_legend_handles_labels()
  fig.legend(handles, names, fontsize=7, loc="lower center", ncol=2, frameon=False)
  fig.tight_layout(rect=(0, 0.06 + 0.035 * ((len(names) + 1) // 2), 1, 1))
  fig.savefig(path, dpi=110)
  plt.close(fig)
