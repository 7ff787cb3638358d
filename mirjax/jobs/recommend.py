"""The recommendation job (`config.job = "recommend"`, configs/recommend.py): content-based
music recommendation for songs nobody has played yet, after van den Oord, Dieleman &
Schrauwen, "Deep content-based music recommendation" (NIPS 2013).

  1. listening data: the play counts of `recommend.n_users` SIMULATED listeners over the
     embedded clips (mirjax/data/listening.py: tastes over tags and labels, heavy-tailed
     popularity and counts), written to WORKDIR/listening/plays.tsv in the Taste Profile
     triplet format; the clips of the dataset's valid and test splits are the cold-start
     songs, and a share of users are test users (`listening.split_cold_start`);
  2. WMF (Hu, Koren & Volinsky 2008; mirjax/unsupervised/wmf.py) of the training users'
     plays of the warm songs: the songs' latent factors are the targets to predict;
  3. content features of every clip: log-mel statistics (mean and standard deviation over
     time of each band), and a regressor from features to factors fitted on the warm songs
     (90%; 10% choose its weight decay): "linear" and "mlp" (mirjax/evaluation/probes.py);
  4. test users' factors folded in from their plays of warm songs; every test user's cold
     songs ranked by the dot product of their factors with each song's predicted factors;
     mAP@`recommend.k` and AUC against the songs they played (mirjax/evaluation/recommendation.py).

Compared on the same users and songs: "wmf_upper_bound" (factors learned with the cold
songs' own plays by the training users: what a perfect content model could reach),
"popularity" (cold songs ranked by their number of training listeners, also unavailable in
a real cold start) and "random". WORKDIR/results.json holds every method's figures under
"methods" and the best content-based method's at the top level ("map@500", "auc").
"""
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mirjax import checkpoint, metrics, sharding
from mirjax.audio import mel, multiscale
from mirjax.data import listening, pipeline
from mirjax.errors import ConfigError
from mirjax.evaluation import probes, recommendation
from mirjax.unsupervised import wmf

CONTENT = ("linear", "mlp")  # regressors from content features to song factors
METHODS = ("wmf_upper_bound", *CONTENT, "popularity", "random")


def check(config):
  """ConfigErrors for settings that cannot work, before any data is read."""
  r = config.recommend
  if config.data.name != "embedded":
    raise ConfigError("the recommend job simulates listeners over the embedded clips "
                      f"(data.name='embedded'), not {config.data.name!r}")
  if r.solver not in wmf.SOLVERS:
    raise ConfigError(f"recommend.solver={r.solver!r}: choose one of {wmf.SOLVERS}")
  if r.confidence not in ("linear", "log"):
    raise ConfigError(f"recommend.confidence={r.confidence!r}: choose 'linear' or 'log'")
  unknown = set(r.methods) - set(METHODS)
  if unknown or not set(r.methods) & set(CONTENT):
    raise ConfigError(f"recommend.methods={tuple(r.methods)}: choose among {METHODS}, with at least "
                      f"one content method of {CONTENT}")
  if r.factors < 1 or r.sweeps < 1 or r.n_users < 10 or r.k < 1:
    raise ConfigError("recommend.factors, sweeps and k must be >= 1, n_users >= 10")
  if jax.process_count() > 1:
    raise ConfigError("the recommend job runs in one process (over all of its devices)")


def mel_statistics(config, sources, sr: int) -> dict:
  """{split: (clips, 2 n_mels)}: mean and standard deviation over time of each log-mel band."""
  r = config.recommend
  n = int(round(config.data.crop_seconds * sr))

  @jax.jit
  def stats(audio):
    S = multiscale.log_compress(mel.melspectrogram(audio, sr=sr, n_fft=r.n_fft, hop_length=r.hop_length,
                                                   n_mels=r.n_mels))
    return jnp.concatenate([S.mean(axis=-2), S.std(axis=-2)], axis=-1)

  out = {}
  for split, source in sources.items():
    parts = []
    for lo in tqdm(range(0, len(source), r.batch_clips), desc=f"recommend: {split} mel statistics",
                   leave=False, unit="batch"):
      clips = [pipeline.to_float(pipeline.fit_length(source[i]["audio"], n)[:n])
               for i in range(lo, min(lo + r.batch_clips, len(source)))]
      real = len(clips)
      clips += [np.zeros(n, np.float32)] * (r.batch_clips - real)  # one program for every batch
      parts.append(np.asarray(stats(np.stack(clips)))[:real])
    out[split] = np.concatenate(parts)
  return out


def _confidence(config, counts):
  r = config.recommend
  return wmf.confidence(counts, alpha=r.alpha, scale=r.confidence, eps=r.eps)


def factorise(config, plays: listening.Plays, mesh, seed: int):
  """WMF of `plays` (all users x all songs): (user factors, song factors, objective history)."""
  r = config.recommend
  bar = tqdm(total=r.sweeps, desc="recommend: WMF sweeps", leave=False)
  res = wmf.fit(plays.users, plays.songs, _confidence(config, plays.counts), plays.n_users, plays.n_songs,
                factors=r.factors, reg=r.reg, sweeps=r.sweeps, solver=r.solver, cg_steps=r.cg_steps,
                key=jax.random.key(seed), mesh=mesh, progress=lambda s, obj: bar.update(1))
  bar.close()
  return res


def fold_in_users(config, history: listening.Plays, users, song_factors, mesh) -> np.ndarray:
  """(len(users), k): the factors of `users` solved from their `history` against fixed song factors."""
  row = np.full(history.n_users, -1, np.int64)
  row[users] = np.arange(len(users))
  return wmf.fold_in(row[history.users], history.songs, _confidence(config, history.counts), len(users),
                     song_factors, reg=config.recommend.reg, mesh=mesh)


def _relevant(target: listening.Plays, users, songs) -> np.ndarray:
  """Dense 0/1 (len(users), len(songs)): which of `songs` each of `users` played."""
  row = np.full(target.n_users, -1, np.int64)
  row[users] = np.arange(len(users))
  col = np.full(target.n_songs, -1, np.int64)
  col[songs] = np.arange(len(songs))
  rel = np.zeros((len(users), len(songs)), np.int8)
  keep = (row[target.users] >= 0) & (col[target.songs] >= 0)
  rel[row[target.users[keep]], col[target.songs[keep]]] = 1
  return rel


def run(config, workdir: str) -> dict:
  """Simulates the listeners, factorises, regresses, ranks; results.json of the run."""
  t0 = time.time()
  check(config)
  r = config.recommend
  mesh = sharding.make_mesh(config.mesh.num_devices)
  os.makedirs(os.path.join(workdir, "listening"), exist_ok=True)
  sources, info = pipeline.load(config.data)
  sr = int(info.sample_rate)
  songs = listening.embedded_song_attributes(config.data.config, data_dir=config.data.data_dir or None)
  plays = listening.simulate(songs.values, r.n_users, seed=r.listening_seed, song_ids=songs.song_ids)
  listening.write_taste_profile(plays, os.path.join(workdir, "listening", "plays.tsv"))
  split = listening.split_cold_start(plays, songs.split != "train", r.test_user_fraction, seed=r.listening_seed)
  cold, warm, test_users = split.cold_songs, split.warm_songs, split.test_users
  relevant = _relevant(split.test_target, test_users, cold)
  results = {"methods": {}, "listening": {
      "simulated": True, "users": plays.n_users, "songs": plays.n_songs, "plays": plays.n_plays,
      "train_users": len(split.train_users), "test_users": len(test_users), "dropped_users": len(split.dropped_users),
      "warm_songs": len(warm), "cold_songs": len(cold), "train_plays": split.train.n_plays,
      "test_target_plays": split.test_target.n_plays}}

  def score(name, user_factors, song_factors):
    results["methods"][name] = recommendation.evaluate_factors(user_factors, song_factors, relevant, k=r.k)

  # the cold-start factorisation: training users, warm songs only
  fit = factorise(config, split.train, mesh, config.seed)
  results["wmf_objective"] = [float(v) for v in fit.objective]
  users = fold_in_users(config, split.test_history, test_users, fit.item_factors, mesh)

  # content features -> factors, fitted on the warm songs (every warm song is a train clip)
  feats = mel_statistics(config, sources, sr)
  index = {sid: i for i, sid in enumerate(songs.song_ids)}
  features = np.zeros((plays.n_songs, next(iter(feats.values())).shape[1]), np.float32)
  for s, f in feats.items():
    features[[index[f"{s}/{i}"] for i in range(len(f))]] = f
  rng = np.random.default_rng([config.seed, 16])
  order = rng.permutation(warm)
  n_valid = max(1, int(round(r.valid_fraction * len(order))))
  fit_songs, valid_songs = order[n_valid:], order[:n_valid]
  targets = fit.item_factors
  for kind in [m for m in r.methods if m in CONTENT]:
    predict, l2, by_l2 = probes.fit_selected(
        (features[fit_songs], targets[fit_songs]), (features[valid_songs], targets[valid_songs]),
        task="regression", n_out=r.factors, kind=kind, l2_grid=tuple(r.l2_grid), steps=r.probe_steps,
        lr=r.probe_lr, hidden=r.probe_hidden, seed=config.seed)
    score(kind, users, predict(features[cold]))
    results["methods"][kind].update({"l2": l2, "valid_r2_by_l2": list(by_l2)})

  # the training users' plays of every song, the cold songs' included (unknown in a real cold start)
  full = plays.select(np.isin(plays.users, split.train_users))
  if "wmf_upper_bound" in r.methods:  # factors of the cold songs learned from their own plays
    upper = factorise(config, full, mesh, config.seed)
    score("wmf_upper_bound", fold_in_users(config, split.test_history, test_users, upper.item_factors, mesh),
          upper.item_factors[cold])
  if "popularity" in r.methods:  # cold songs ranked by their number of training listeners
    listeners = np.bincount(full.songs, minlength=plays.n_songs)[cold]
    results["methods"]["popularity"] = recommendation.evaluate_ranking(
        recommendation.popularity_scores(listeners, len(test_users)), relevant, k=r.k)
  if "random" in r.methods:
    noise = np.random.default_rng([config.seed, 17]).random((len(test_users), len(cold)))
    results["methods"]["random"] = recommendation.evaluate_ranking(noise, relevant, k=r.k)

  content = {m: v for m, v in results["methods"].items() if m in CONTENT}
  best = max(content, key=lambda m: content[m][f"map@{r.k}"])
  results.update({"method": best, f"map@{r.k}": content[best][f"map@{r.k}"], "auc": content[best]["auc"],
                  "config_hash": checkpoint.config_hash(config.to_dict()), "dataset": info.name,
                  "wall_time_s": time.time() - t0})
  metrics.write_json(os.path.join(workdir, "results.json"), results)
  print(summary(results, r.k))
  return results


def summary(results: dict, k: int) -> str:
  """The methods as a Markdown table (mAP@k, AUC, users scored)."""
  lines = [f"| method | mAP@{k} | AUC | users |", "|---|---|---|---|"]
  for name, m in results["methods"].items():
    lines.append(f"| {name} | {m[f'map@{k}']:.4f} | {m['auc']:.4f} | {m['users']} |")
  return "\n".join(lines)


recommend = run  # mirjax.main's name for the job
