"""Transfer learning by supervised pre-training (`config.job = "pretrain"`,
configs/transfer.py), after van den Oord, Dieleman & Schrauwen, "Transfer learning by
supervised pre-training for audio-based music classification" (ISMIR 2014): a network
trained on a source task with plenty of labels is a feature extractor for other tasks.

  python -m mirjax.main --config=configs/transfer.py --workdir=workdirs/transfer

The source clips are the training split of the embedded data, 90 % to train a source
network and 10 % to choose its step (`pretrain.valid_fraction`); no clip of the target
tasks' valid or test splits is seen by a source. Source tasks (`pretrain.sources`):
  tag_factors        WMF (mirjax/unsupervised/wmf.py) of the clips x tags matrix, a tag
                     being a "user" who "played" the clips it describes; the network
                     regresses each clip's latent factors (task "regression", MSE)
  listening_factors  WMF of SIMULATED listening data over the source clips (mirjax/data/
                     listening.py, as the recommend job, but tastes over the clips' tags only:
                     no label of a target task shapes it); the network regresses the factors
  tags               the network predicts the tags themselves (task "tagging")
Each source trains the same network (the content CNN of the recommend job by default,
`config.source`) from every seed of `pretrain.seeds`, in
WORKDIR/sources/<source>_seed<S>_<hash of its targets> (a finished run is reused, a stopped
one resumes, new factors train anew); the factors are in WORKDIR/factors/<source> (a
"song_factors" dataset).

The embedded labels tempo, drums and texture are functions of the tags (mirjax/data/
embedded: "fast"/"slow", "drums"/"beat", "solo" and the instrument families), so the
"tags" source is trained on what they are made of; composer is not a tag, the one target
no source names.

Then the transfer job (mirjax/jobs/transfer.py, `config.transfer`) probes every layer of
every source network on the target tasks (embedded labels; GTZAN, ESC-50, NSynth or
MagnaTagATune from `config.transfer.manual_dirs`), against the same network untrained
(`transfer.untrained_seeds`), spherical k-means features learned without labels from the
source clips (mirjax/jobs/kmeans.py, `config.kmeans`; `pretrain.kmeans = False` leaves
them out) and hand-crafted log-mel and MFCC statistics, all with the same probes, budget
and selection: WORKDIR/transfer/ (transfer.md, .csv, .png, .json). WORKDIR/pretrain.md is
the table: per target task and kind of features, the test metric of the layer chosen on
the valid split, mean ± std over seeds; results.json holds it too.
"""
import copy
import os
import time

import jax
import numpy as np

from mirjax import checkpoint, metrics, sharding
from mirjax.data import listening, pipeline, song_factors
from mirjax.errors import ConfigError
from mirjax.jobs import compare, kmeans, transfer
from mirjax.unsupervised import wmf

SOURCES = ("tag_factors", "listening_factors", "tags")
KMEANS = "spherical k-means (unsupervised)"


def check(config):
  p = config.pretrain
  bad = [s for s in p.sources if s not in SOURCES]
  if bad or not p.sources:
    raise ConfigError(f"pretrain.sources={tuple(p.sources)!r}: choose among {SOURCES}")
  if not p.seeds:
    raise ConfigError("pretrain.seeds is empty: name at least one seed of the source networks")
  if config.source.data.name != "embedded":
    raise ConfigError("the source tasks are made over the embedded clips (source.data.name='embedded')")
  if not 0.0 < p.valid_fraction < 0.5:
    raise ConfigError(f"pretrain.valid_fraction={p.valid_fraction}: choose a share in (0, 0.5)")
  if jax.process_count() > 1:
    raise ConfigError("the pretrain job runs in one process (over all of its devices)")
  transfer.check_settings(config.transfer)  # before any source network trains


def source_songs(config):
  """(songs, {"train": indices, "valid": indices}): the embedded training clips, split once
  (the same for every source and seed)."""
  data = config.source.data
  songs = listening.embedded_song_attributes(data.config, data_dir=data.data_dir or None)
  clips = np.flatnonzero(songs.split == "train")
  order = np.random.default_rng([int(config.pretrain.split_seed), 19]).permutation(clips)
  n_valid = max(1, int(round(config.pretrain.valid_fraction * len(order))))
  return songs, {"train": np.sort(order[n_valid:]), "valid": np.sort(order[:n_valid])}


def _wmf(plays: listening.Plays, factors: int, reg: float, alpha: float, sweeps: int, mesh) -> np.ndarray:
  """The songs' factors (n_songs, factors) of WMF of `plays` (confidence 1 + alpha r)."""
  res = wmf.fit(plays.users, plays.songs, wmf.confidence(plays.counts, alpha=alpha), plays.n_users, plays.n_songs,
                factors=factors, reg=reg, sweeps=sweeps, key=jax.random.key(0), mesh=mesh)
  return res.item_factors


def source_factors(config, source: str, songs, clips: np.ndarray, mesh) -> np.ndarray:
  """(n_songs, k) latent factors of source `source` ("tag_factors" or "listening_factors");
  rows outside `clips` (the source clips) are zero: nothing of theirs is used."""
  p = config.pretrain
  keep = np.zeros(len(songs.song_ids), bool)
  keep[clips] = True
  tag_cols = [i for i, n in enumerate(songs.names) if n.startswith("tag:")]
  if source == "tag_factors":  # clips x tags, each tag a "user" of the clips it describes
    tags, clip = np.nonzero(songs.values[:, tag_cols].T * keep[None])
    plays = listening.Plays(tags, clip, np.ones(len(tags), np.int64), np.array([songs.names[i] for i in tag_cols]),
                            songs.song_ids)
    y = _wmf(plays, p.tag_factors, p.tag_reg, p.tag_alpha, p.sweeps, mesh)
  elif source == "listening_factors":  # listeners' tastes over the source clips' tags only
    plays = listening.simulate(songs.values[clips][:, tag_cols], p.n_users, seed=0, song_ids=songs.song_ids[clips])
    plays = listening.Plays(plays.users, clips[plays.songs], plays.counts, plays.user_ids, songs.song_ids)
    y = _wmf(plays, p.listening_factors, p.listening_reg, p.listening_alpha, p.sweeps, mesh)
  else:
    raise ValueError(f"{source!r} has no factors")
  return np.where(keep[:, None], y, 0.0).astype(np.float32)


def source_config(config, source: str, seed: int, folder: str):
  """The training config of one source network: `config.source` on the song-factor folder
  `folder`, regressing its factors or (source "tags") predicting the tags."""
  c = copy.deepcopy(config.source)
  c.seed = int(seed)
  c.data.name, c.data.manual_dir = "song_factors", os.path.abspath(folder)
  if source == "tags":
    c.task.name, c.task.branches, c.train.select_by = "tagging", ("tagging",), "roc_auc"
  else:
    c.task.name, c.task.branches, c.train.select_by = "regression", ("regression",), "mse"
  return c


def kmeans_sets(config, songs, clips, mesh, workdir: str):
  """extra_sets for the transfer job: spherical k-means features, the dictionaries learned
  from the source clips (kept in WORKDIR/kmeans/dictionary.npz and reused)."""
  kc = copy.deepcopy(config.source)
  with kc.unlocked():
    kc.kmeans = config.kmeans
  kc.data.crop_seconds = float(config.kmeans_seconds)
  audio, info = pipeline.load(kc.data)
  sr = int(info.sample_rate)
  n_samples = int(round(kc.data.crop_seconds * sr))
  keys = [(l, w) for l in kmeans.levels_of(kc) for w in kc.kmeans.windows]
  digest = checkpoint.config_hash({**kmeans.settings(kc), "clips": songs.song_ids[clips].tolist()})
  path = os.path.join(workdir, "kmeans", "dictionary.npz")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  learned = kmeans.load_dictionaries(path, digest, keys)
  if learned is None:
    clip_source = song_factors.FactorSource(audio, songs.song_ids[clips], {})
    learned = kmeans.learn_and_save(kc, clip_source, mesh, sr, n_samples, path, digest)
  fn = kmeans.feature_program(kc, learned, sr, mesh)
  cache = {}

  def sets(task, sources, task_info):
    if int(task_info.sample_rate) != sr:
      raise ConfigError(f"task {task}: k-means features are learned at {sr} Hz, the task's audio is "
                        f"{task_info.sample_rate} Hz")
    out = {}
    for split, source in sources.items():
      key = (task_info.name.split("/")[0], split, len(source))
      if key not in cache:
        cache[key] = kmeans.clip_features(fn, source, n_samples, kc.kmeans.batch_clips, mesh,
                                          f"k-means features: {split}")
      out[split] = cache[key]
    return {(KMEANS, None, "features"): out}
  return sets


def run(config, workdir: str) -> dict:
  """Trains the sources (or reuses them), runs the transfer job on them; results.json."""
  t0 = time.time()
  check(config)
  compare.share_compilations(workdir)
  mesh = sharding.make_mesh(config.source.mesh.num_devices)
  songs, splits = source_songs(config)
  runs, factors_used, made = [], {}, {}
  for source in config.pretrain.sources:
    base = "tag_factors" if source == "tags" else source  # "tags" trains on the same clips, tags as targets
    if base not in made:
      made[base] = source_factors(config, base, songs, np.concatenate(list(splits.values())), mesh)
    y = made[base]
    folder = os.path.join(workdir, "factors", source)  # its own folder: runs are named by their dataset
    song_factors.write(folder, config.source.data.to_dict(),
                       {s: {"ids": songs.song_ids[i], "factors": y[i]} for s, i in splits.items()},
                       name=source, simulated_listeners=source == "listening_factors")
    factors_used[source] = {"dim": int(y.shape[1])} if source != "tags" else {}
    key = song_factors.digest(folder)  # new factors or clips train new networks, never resume old ones
    for seed in config.pretrain.seeds:
      path = os.path.join(workdir, "sources", f"{source}_seed{seed}_{key}")
      os.makedirs(path, exist_ok=True)
      compare._run(source_config(config, source, seed, folder), path)  # pylint: disable=protected-access
      runs.append(path)
  tc = copy.deepcopy(config.transfer)
  with tc.unlocked():
    tc.sources = ",".join(runs)
    tc.data.data_dir = config.source.data.data_dir or None
  extra = kmeans_sets(config, songs, splits["train"], mesh, workdir) if config.pretrain.kmeans else None
  out = transfer.transfer(tc, os.path.join(workdir, "transfer"), extra_sets=extra)
  table = selected_table(out["rows"])
  text = table_markdown(table)
  with open(os.path.join(workdir, "pretrain.md"), "w") as f:
    f.write(text)
  print(text)
  results = {"table": table, "sources": list(config.pretrain.sources), "seeds": [int(s) for s in config.pretrain.seeds],
             "source_clips": {s: int(len(i)) for s, i in splits.items()}, "factors": factors_used,
             "config_hash": checkpoint.config_hash(config.to_dict()), "wall_time_s": time.time() - t0}
  metrics.write_results(workdir, results)
  return results


def kind_of(model: str) -> str:
  """The kind of features a transfer row's model is: its source task, "untrained",
  "k-means" or the hand-crafted set."""
  if " trained on " in model:
    return "pre-trained: " + model.split(" trained on ", 1)[1].split("/")[-1]
  return model


def selected_table(rows) -> list:
  """Per (task, kind of features, probe): for each seed the layer with the best validation
  metric, and its test metric; mean and std over seeds."""
  groups = {}
  for r in rows:
    model = kind_of(r["model"]) if r["model"] != "hand-crafted" else f"hand-crafted: {r['layer']}"
    groups.setdefault((r["task"], model, r["probe"]), {}).setdefault(r["seed"], []).append(r)
  out = []
  for (task, model, probe), by_seed in groups.items():
    best = [max(rs, key=lambda r: -np.inf if np.isnan(r["valid"]) else r["valid"]) for rs in by_seed.values()]
    tests = np.array([b["test"] for b in best], float)
    out.append({"task": task, "metric": best[0]["metric"], "features": model, "probe": probe,
                "test": float(tests.mean()), "test_std": float(tests.std()), "seeds": len(best),
                "layers": sorted({b["layer"] for b in best})})
  return out


def table_markdown(table) -> str:
  lines = ["| target task (test metric) | features | probe | test (mean ± std over seeds) | layer chosen on valid |",
           "|---|---|---|---|---|"]
  for t in table:
    spread = f" ± {t['test_std']:.3f} ({t['seeds']} seeds)" if t["seeds"] > 1 else ""
    lines.append(f"| {t['task']} ({t['metric']}) | {t['features']} | {t['probe']} | {t['test']:.3f}{spread} | "
                 f"{', '.join(t['layers'])} |")
  return "\n".join(lines) + "\n"


pretrain = run  # mirjax.main's name for the job
