"""The explainability study (`config.job = "explain"`, configs/explain.py): train the source
models, then the similarity job on each and the transfer job on all of them, in one
resumable command (after Yanchenko et al., arXiv:2106.00110).

  python -m mirjax.main --config=configs/explain.py --workdir=workdirs/explain

WORKDIR/sources/<architecture>_<task>/  one training run per architecture of
                                        `config.architectures` and task of `config.source_tasks`
WORKDIR/similarity/<architecture>_<task>/  the similarity job on it (cka_*.csv, cka_*.png)
WORKDIR/transfer/                       the transfer job on all sources (transfer.md, .csv, .png)
WORKDIR/study.md                        what the two claims come to: mean CKA with each
                                        feature set, trained and untrained, and the best
                                        probe of each kind of features per target task

A killed study resumes: a finished source run is reused when its config is the same
(results.json's config_hash, as `compare` does), a half-trained one resumes from its
checkpoint, and a similarity result is recomputed only when its settings or its source's
step changed.
"""
import copy
import json
import os

import numpy as np

from mirjax import checkpoint, config as config_lib, metrics
from mirjax.jobs import compare, similarity, transfer


def source_config(config, arch: str, task: str):
  """The training config of one source: configs/explain.py:<arch>,<task>[,smoke]."""
  c = config_lib.from_file("explain", ",".join([arch, task] + (["smoke"] if config.smoke else [])))
  c.data.data_dir = config.data_dir
  c.seed = int(config.seed)
  return c


def _cached(out_dir: str, result: str, settings, trained: list, run) -> dict:
  """`run(settings, out_dir)`, unless OUT_DIR/`result` holds a result of the same settings on
  sources at the same steps; the result, with that key added."""
  steps = [metrics.read_results(os.path.join(t, "results.json")).get("steps") for t in trained]
  key = checkpoint.config_hash({"settings": settings.to_dict(), "steps": steps})
  path = os.path.join(out_dir, result)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old.get("study_key") == key:
      return old
  os.makedirs(out_dir, exist_ok=True)
  out = run(settings, out_dir)
  out["study_key"] = key
  metrics.write_json(path, out)
  return out


def _with(section, config, **fields):
  c = copy.deepcopy(section)
  with c.unlocked():
    c.data.data_dir = config.data_dir or None
    for k, v in fields.items():
      c[k] = v
  return c


def explain(config, workdir: str) -> str:
  """Runs the study into WORKDIR; returns study.md's text."""
  compare.share_compilations(workdir)
  sources = {}
  for arch in config.architectures:
    for task in config.source_tasks:
      name = f"{arch}_{task}"
      path = os.path.join(workdir, "sources", name)
      os.makedirs(path, exist_ok=True)
      compare._run(source_config(config, arch, task), path)  # pylint: disable=protected-access
      sources[name] = path
  sims = {name: _cached(os.path.join(workdir, "similarity", name), "similarity.json",
                        _with(config.similarity, config, trained=path), [path], similarity.similarity)
          for name, path in sources.items()}
  trans = _cached(os.path.join(workdir, "transfer"), "transfer.json",
                  _with(config.transfer, config, sources=",".join(sources.values())),
                  list(sources.values()), transfer.transfer)
  text = study_summary(sims, trans)
  with open(os.path.join(workdir, "study.md"), "w") as f:
    f.write(text)
  print(text)
  return text


def study_summary(sims: dict, trans: dict) -> str:
  """The two claims in numbers: (1) CKA with each feature set averaged over layers, trained
  against untrained; (2) per target task, the best test metric of each kind of features."""
  lines = ["## Similarity: linear CKA with each feature set, mean over layers", ""]
  for name, s in sims.items():
    if "linear" not in s["cka"]:
      continue
    feats = s["features"]
    trained = [m for m in s["models"] if m.startswith("trained")][0]
    cells = s["cka"]["linear"]
    t = {f: np.mean([cells[f"{trained}|{l}"][f] for l in s["layers"]]) for f in feats}
    u = np.array(s["untrained_mean"]["linear"]).mean(axis=0)
    lines.append(f"- {name} ({s['examples']} {s['split']} clips): " + ", ".join(
        f"{f} {t[f]:.2f} trained / {u[k]:.2f} untrained" for k, f in enumerate(feats)))
  lines += ["", "## Transfer: best test metric per target task (any layer; linear probe)", "",
            "| task | metric | trained on this task | trained on another task | untrained (mean over seeds) | hand-crafted |",
            "|---|---|---|---|---|---|"]
  summary = [r for r in transfer.summary_rows(trans["rows"]) if r["probe"] == "linear"]
  for task in trans["tasks"]:
    mine = [r for r in summary if r["task"] == task]
    same = [r for r in mine if "trained on" in r["model"] and _trained_task(r["model"]) == task]
    other = [r for r in mine if "trained on" in r["model"] and _trained_task(r["model"]) != task]
    untrained = [r for r in mine if r["model"].endswith("untrained")]
    hand = [r for r in mine if r["model"] == "hand-crafted"]
    best = lambda rs: (f"{max(r['mean'] for r in rs):.3f} ({max(rs, key=lambda r: r['mean'])['layer']})"  # noqa: E731
                       if rs else "n/a")
    lines.append(f"| {task} | {mine[0]['metric'] if mine else ''} | {best(same)} | {best(other)} | "
                 f"{best(untrained)} | {best(hand)} |")
  return "\n".join(lines) + "\n"


def _trained_task(model_name: str) -> str:
  """The task of a source named "<arch> trained on embedded/<config>[/<label>]"."""
  dataset = model_name.split(" trained on ", 1)[1]
  parts = dataset.split("/")
  return parts[2] if len(parts) > 2 else "tags"
