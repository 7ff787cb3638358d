"""The recommendation job (`config.job = "recommend"`, configs/recommend.py): content-based
music recommendation for songs nobody has played yet, after van den Oord, Dieleman &
Schrauwen, "Deep content-based music recommendation" (NIPS 2013).

  1. listening data: the play counts of `recommend.n_users` SIMULATED listeners over the
     embedded clips (mirjax/data/listening.py: tastes over tags and labels, heavy-tailed
     popularity and counts), written to WORKDIR/listening/plays_seed<S>.tsv in the Taste
     Profile triplet format; or, with `recommend.plays_file`, real plays read from such a
     file (`read_listening`: its song ids name the clips of the dataset); the clips of the
     dataset's valid and test splits are the cold-start songs, and a share of users are
     test users (`listening.split_cold_start`);
  2. WMF (Hu, Koren & Volinsky 2008; mirjax/unsupervised/wmf.py) of the training users'
     plays of the warm songs: the songs' latent factors are the targets to predict. Its
     weight decay and confidence scale are chosen from `recommend.reg_grid` x
     `recommend.alpha_grid` on validation users (`select_wmf`: a share of the training users
     whose warm-song plays are half hidden, scored by mAP@k), unless a grid is empty;
  3. content models fitted on the warm songs (90%; the other 10% choose each one's weight
     decay or training step), all reading the same log-mel (`config.model.frontend`):
     "linear" and "mlp" (mirjax/evaluation/probes.py) regress the factors from each clip's
     log-mel statistics (mean and standard deviation over time of each band); "cnn" is the
     paper's convolutional network (mirjax/models/content_cnn.py) trained by the train
     job on 3 s windows (`config.data.crop_seconds`) with the mean squared error, or its
     weighted prediction error (`config.task.loss = "wpe"`), a clip's prediction being the
     mean over its `config.eval.n_chunks` windows; its song factors are written to
     WORKDIR/factors/seed<S> (a "song_factors" dataset) and its run is
     WORKDIR/cnn/seed<S>_<hash of those factors> (new factors never resume an old run);
  4. test users' factors folded in from their plays of warm songs; every test user's cold
     songs ranked by the dot product of their factors with each song's predicted factors;
     mAP@`recommend.k` and AUC against the songs they played (mirjax/evaluation/recommendation.py).

Compared on the same users and songs: "wmf_upper_bound" (factors learned with the cold
songs' own plays by the training users: what a perfect content model could reach),
"popularity" (cold songs ranked by their number of training listeners, also unavailable in
a real cold start) and "random". Every seed of `recommend.seeds` draws its own listeners,
test users, WMF start and regressor fits. WORKDIR/results.json holds every method's mean
and std over seeds under "methods" (each seed's under "seeds"), and the best content-based
method's means at the top level ("map@500", "auc"); WORKDIR/recommendation.md the table.
WORKDIR/seeds/seed<S>_factors.npz keeps what each factor method ranked by: "test_users" and
"cold_songs" (indices into the seed's listening data) and, per method, "<method>/users" and
"<method>/songs", whose product is its scores.
"""
import copy
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mirjax import checkpoint, metrics, sharding, steps
from mirjax.audio import mel, multiscale
from mirjax.data import listening, pipeline, song_factors
from mirjax.errors import ConfigError, DataError
from mirjax.evaluation import probes, recommendation
from mirjax.unsupervised import wmf

PROBES = ("linear", "mlp")  # regressors from log-mel statistics to song factors
CONTENT = (*PROBES, "cnn")  # every content-based method
METHODS = ("wmf_upper_bound", *CONTENT, "popularity", "random")


def check(config):
  """ConfigErrors for settings that cannot work, before any data is read."""
  r = config.recommend
  if r.plays_file and config.data.name not in ("embedded", "folder"):
    raise ConfigError(f"recommend.plays_file names songs by clip: data.name must be 'embedded' (song ids "
                      f"'<split>/<index>') or 'folder' (song id = a file's name without extension), not "
                      f"{config.data.name!r}")
  if not r.plays_file and config.data.name != "embedded":
    raise ConfigError("the recommend job simulates listeners over the embedded clips "
                      f"(data.name='embedded'), not {config.data.name!r}; for your own audio and "
                      "listening data set data.name='folder' and recommend.plays_file")
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
  if config.model.frontend.name != "logmel":
    raise ConfigError(f"model.frontend.name={config.model.frontend.name!r}: every content method reads "
                      "the log-mel the model's front-end sets ('logmel')")


def mel_statistics(config, sources, sr: int) -> dict:
  """{split: (clips, 2 n_mels)}: mean and standard deviation over time of each log-mel band."""
  r, fe = config.recommend, config.model.frontend
  n = int(round(r.clip_seconds * sr))

  @jax.jit
  def stats(audio):
    S = multiscale.log_compress(mel.melspectrogram(audio, sr=sr, n_fft=fe.n_fft, hop_length=fe.hop,
                                                   n_mels=fe.n_mels, fmin=fe.fmin, fmax=fe.fmax))
    return jnp.concatenate([S.mean(axis=-2), S.std(axis=-2)], axis=-1)

  out = {}
  for split, source in sources.items():
    batches = tqdm(pipeline.clip_batches(source, n, r.batch_clips), desc=f"recommend: {split} mel statistics",
                   total=-(-len(source) // r.batch_clips), leave=False, unit="batch")
    out[split] = np.concatenate([np.asarray(stats(audio))[:real] for audio, real in batches])
  return out


def _confidence(config, counts, alpha=None):
  r = config.recommend
  return wmf.confidence(counts, alpha=r.alpha if alpha is None else alpha, scale=r.confidence, eps=r.eps)


def factorise(config, plays: listening.Plays, mesh, seed: int, reg=None, alpha=None):
  """WMF of `plays` (all users x all songs): (user factors, song factors, objective history);
  `reg` and `alpha` default to `recommend.reg` and `recommend.alpha`."""
  r = config.recommend
  bar = tqdm(total=r.sweeps, desc="recommend: WMF sweeps", leave=False)
  res = wmf.fit(plays.users, plays.songs, _confidence(config, plays.counts, alpha), plays.n_users, plays.n_songs,
                factors=r.factors, reg=r.reg if reg is None else reg, sweeps=r.sweeps, solver=r.solver,
                cg_steps=r.cg_steps, key=jax.random.key(seed), mesh=mesh, progress=lambda s, obj: bar.update(1))
  bar.close()
  return res


def fold_in_users(config, history: listening.Plays, users, song_factors, mesh, reg=None, alpha=None) -> np.ndarray:
  """(len(users), k): the factors of `users` solved from their `history` against fixed song factors."""
  row = np.full(history.n_users, -1, np.int64)
  row[users] = np.arange(len(users))
  return wmf.fold_in(row[history.users], history.songs, _confidence(config, history.counts, alpha), len(users),
                     song_factors, reg=config.recommend.reg if reg is None else reg, mesh=mesh)


def select_wmf(config, split: listening.ColdStartSplit, mesh, seed: int) -> dict:
  """WMF's (reg, alpha) chosen on validation users, who never see a test user or a cold song.

  `recommend.valid_user_fraction` of the training users are validation users; each of
  their warm-song plays is hidden with probability 1/2. WMF of the training plays that
  are not hidden, for every (reg, alpha) of `recommend.reg_grid` x `recommend.alpha_grid`
  (the same start), ranks each validation user's warm songs outside their visible plays;
  the pair with the highest mAP@k of the hidden ones wins. Returns {"reg", "alpha",
  "grid": [{"reg", "alpha", "map@k", "auc"}, ...], "valid_users"}."""
  r = config.recommend
  if not (r.reg_grid and r.alpha_grid):
    return {"reg": float(r.reg), "alpha": float(r.alpha), "grid": [], "valid_users": 0}
  rng = np.random.default_rng([seed, 18])
  train = split.train
  valid = np.sort(rng.permutation(split.train_users)[:max(1, int(round(r.valid_user_fraction * len(split.train_users))))])
  hidden = np.isin(train.users, valid) & (rng.random(train.n_plays) < 0.5)
  visible = train.select(~hidden)
  warm = split.warm_songs
  relevant = train.select(hidden).to_csr()[valid][:, warm] > 0
  seen = visible.to_csr()[valid][:, warm] > 0
  grid = []
  for reg in r.reg_grid:
    for alpha in r.alpha_grid:
      fit = factorise(config, visible, mesh, seed, reg=float(reg), alpha=float(alpha))
      m = recommendation.evaluate_factors(fit.user_factors[valid], fit.item_factors[warm], relevant, k=r.k,
                                          exclude=seen)
      grid.append({"reg": float(reg), "alpha": float(alpha), f"map@{r.k}": m[f"map@{r.k}"], "auc": m["auc"]})
  best = max(grid, key=lambda g: g[f"map@{r.k}"])
  return {"reg": best["reg"], "alpha": best["alpha"], "grid": grid, "valid_users": int(len(valid))}


def content_features(config, songs, sources, sr: int) -> np.ndarray:
  """(n_songs, D): every song's log-mel statistics, in the order of `songs.song_ids`."""
  feats = mel_statistics(config, sources, sr)
  index = {sid: i for i, sid in enumerate(songs.song_ids)}
  out = np.zeros((len(songs.song_ids), next(iter(feats.values())).shape[1]), np.float32)
  for split, f in feats.items():
    out[[index[f"{split}/{i}"] for i in range(len(f))]] = f
  return out


def cnn_config(config, folder: str, seed: int):
  """The train config of the content CNN on the song-factor folder `folder`: `config` (its
  model, train, optim and eval sections) with the data replaced by that folder."""
  c = copy.deepcopy(config)
  with c.unlocked():
    c.job = "train"
    del c["recommend"]
  c.seed = int(seed)
  c.data.name, c.data.manual_dir = "song_factors", os.path.abspath(folder)
  return c


def train_cnn(config, seed: int, split_songs: dict, factors, wpe, songs, audio, mesh, workdir: str):
  """Trains the content CNN (WORKDIR/cnn/seed<S>, resumed if stopped) on the factors of the
  songs of `split_songs` {"train": indices, "valid": indices}, the training step chosen by
  the validation mean squared error; returns (predict(song indices) -> (n, k) factors, its
  results). `wpe`: the songs' weighted-prediction-error terms (None for the MSE)."""
  from mirjax.jobs import evaluate, train  # pylint: disable=import-outside-toplevel
  folder = os.path.join(workdir, "factors", f"seed{seed}")
  splits = {s: {"ids": songs.song_ids[i], "factors": factors[i], **({k: v[i] for k, v in wpe.items()} if wpe else {})}
            for s, i in split_songs.items()}
  song_factors.write(folder, config.data.to_dict(), splits, name=f"seed{seed}",
                     simulated_listeners=not config.recommend.plays_file)
  # named by its targets: new factors (other listeners or WMF settings) train a new network
  run_dir = os.path.join(workdir, "cnn", f"seed{seed}_{song_factors.digest(folder)}")
  results = dict(train.train_and_evaluate(cnn_config(config, folder, seed), run_dir))
  run = evaluate.load_run(run_dir, "best" if config.train.select_by else "last", mesh)
  state_shardings = jax.tree.map(lambda _: sharding.replicated(mesh), run.system.abstract_state)
  step = jax.jit(functools.partial(steps.eval_step, model=run.system.model, task=run.system.task),
                 in_shardings=(state_shardings, sharding.batch_sharding(mesh)))

  def predict(indices):
    source = song_factors.FactorSource(audio, songs.song_ids[indices], {})
    out, _ = train.run_over_split(run.state, source, step, mesh=mesh, cfg=run.config, crop=run.system.crop,
                                  target="")
    return np.asarray(out["regression"], np.float32)  # each clip: the mean over its windows
  return predict, results


def clip_songs(sources, info, data_name: str) -> tuple:
  """(clip ids (n,) "<split>/<index>", split of each (n,), song id of each (n,)) of every
  clip of `sources`: an embedded clip is its own song (song id = clip id); a folder clip's
  song is its file's name without extension, e.g. an MSD track id, one clip per file."""
  ids, splits, song = [], [], []
  for split, source in sources.items():
    for i in range(len(source)):
      ids.append(f"{split}/{i}")
      splits.append(split)
      if data_name == "folder":
        song.append(os.path.splitext(os.path.basename(info.files[int(source[i]["file_index"])]))[0])
  song = np.array(ids if data_name != "folder" else song)
  names, counts = np.unique(song, return_counts=True)
  if np.any(counts > 1):
    raise DataError(f"{int(np.sum(counts > 1))} songs ({', '.join(names[counts > 1][:3])}, ...) have several clips: "
                    "a song is one clip; set data.clip_seconds to at least the files' length")
  return np.array(ids), np.array(splits), song


def read_listening(path: str, clip_ids, song_of_clip) -> tuple:
  """(plays over the clips, report): the Taste Profile triplets of `path` whose song is a
  clip of the dataset (`clip_songs`); plays of other songs are left out and counted."""
  plays = listening.read_taste_profile(path)
  clip_of = {s: i for i, s in enumerate(song_of_clip)}
  index = np.array([clip_of.get(s, -1) for s in plays.song_ids], np.int64)
  keep = index[plays.songs] >= 0
  if not keep.any():
    raise DataError(f"none of the {plays.n_songs} songs of {path} is a clip of the dataset: its song ids "
                    f"must be the clips' ({', '.join(song_of_clip[:3])}, ...)")
  report = {"file": os.path.abspath(path), "songs_in_file": plays.n_songs,
            "songs_without_audio": int(np.sum(index < 0)), "plays_left_out": int(np.sum(~keep))}
  return listening.Plays(plays.users[keep], index[plays.songs[keep]], plays.counts[keep], plays.user_ids,
                         np.asarray(clip_ids)), report


def one_seed(config, seed: int, songs, features, mesh, workdir: str, audio=None, plays=None) -> dict:
  """Every method's mAP@k and AUC for one seed: its own listeners (simulated, unless
  `plays` gives real ones), test users, WMF start and regressor fits (the same songs and
  features for all)."""
  r = config.recommend
  simulated = plays is None
  if simulated:
    plays = listening.simulate(songs.values, r.n_users, seed=seed, song_ids=songs.song_ids)
    listening.write_taste_profile(plays, os.path.join(workdir, "listening", f"plays_seed{seed}.tsv"))
  split = listening.split_cold_start(plays, songs.split != "train", r.test_user_fraction, seed=seed)
  cold, warm, test_users = split.cold_songs, split.warm_songs, split.test_users
  relevant = (split.test_target.to_csr()[test_users][:, cold] > 0).astype(np.int8)  # who played which cold song
  out = {"methods": {}, "listening": {
      "simulated": simulated, "users": plays.n_users, "songs": plays.n_songs, "plays": plays.n_plays,
      "train_users": len(split.train_users), "test_users": len(test_users), "dropped_users": len(split.dropped_users),
      "warm_songs": len(warm), "cold_songs": len(cold), "train_plays": split.train.n_plays,
      "test_target_plays": split.test_target.n_plays}}

  saved = {"test_users": np.asarray(test_users), "cold_songs": np.asarray(cold)}

  def score(name, user_factors, song_factors):
    out["methods"][name] = recommendation.evaluate_factors(user_factors, song_factors, relevant, k=r.k)
    saved[f"{name}/users"], saved[f"{name}/songs"] = np.asarray(user_factors), np.asarray(song_factors)

  # WMF's settings, chosen on validation users among the training users
  chosen = select_wmf(config, split, mesh, seed)
  out["wmf_selection"] = chosen
  reg, alpha = chosen["reg"], chosen["alpha"]
  # the cold-start factorisation: training users, warm songs only
  fit = factorise(config, split.train, mesh, seed, reg=reg, alpha=alpha)
  out["wmf_objective"] = [float(v) for v in fit.objective]
  users = fold_in_users(config, split.test_history, test_users, fit.item_factors, mesh, reg=reg, alpha=alpha)
  # content features -> factors, fitted on the warm songs (every warm song is a train clip)
  order = np.random.default_rng([seed, 16]).permutation(warm)
  n_valid = max(1, int(round(r.valid_fraction * len(order))))
  fit_songs, valid_songs = order[n_valid:], order[:n_valid]
  targets = fit.item_factors
  if "cnn" in r.methods:
    wpe = None
    if config.task.loss == "wpe":  # every song's error terms over the training users' factors
      row = np.full(plays.n_users, -1, np.int64)
      row[split.train_users] = np.arange(len(split.train_users))
      wpe = song_factors.wpe_terms(fit.user_factors[split.train_users], row[split.train.users], split.train.songs,
                                   _confidence(config, split.train.counts, alpha), plays.n_songs)
    predict, trained = train_cnn(config, seed, {"train": fit_songs, "valid": valid_songs}, targets, wpe, songs,
                                 audio, mesh, workdir)
    score("cnn", users, predict(cold))
    out["methods"]["cnn"].update({"loss": config.task.loss, "valid_r2": trained.get("valid/r2"),
                                  "valid_mse": trained.get("valid/mse"), "selected_step": trained.get("selected_step"),
                                  "train_seconds": trained.get("train_seconds")})
  for kind in [m for m in r.methods if m in PROBES]:
    predict, l2, by_l2 = probes.fit_selected(
        (features[fit_songs], targets[fit_songs]), (features[valid_songs], targets[valid_songs]),
        task="regression", n_out=r.factors, kind=kind, l2_grid=tuple(r.l2_grid), steps=r.probe_steps,
        lr=r.probe_lr, hidden=r.probe_hidden, seed=seed)
    score(kind, users, predict(features[cold]))
    out["methods"][kind].update({"l2": l2, "valid_r2_by_l2": list(by_l2)})
  # the training users' plays of every song, the cold songs' included (unknown in a real cold start)
  full = plays.select(np.isin(plays.users, split.train_users))
  if "wmf_upper_bound" in r.methods:  # factors of the cold songs learned from their own plays
    upper = factorise(config, full, mesh, seed, reg=reg, alpha=alpha)
    score("wmf_upper_bound", fold_in_users(config, split.test_history, test_users, upper.item_factors, mesh,
                                           reg=reg, alpha=alpha), upper.item_factors[cold])
  if "popularity" in r.methods:  # cold songs ranked by their number of training listeners
    listeners = np.bincount(full.songs, minlength=plays.n_songs)[cold]
    out["methods"]["popularity"] = recommendation.evaluate_ranking(
        recommendation.popularity_scores(listeners, len(test_users)), relevant, k=r.k)
  if "random" in r.methods:
    noise = np.random.default_rng([seed, 17]).random((len(test_users), len(cold)))
    out["methods"]["random"] = recommendation.evaluate_ranking(noise, relevant, k=r.k)
  if jax.process_index() == 0:  # what each factor method ranked the cold songs by, for analysis
    np.savez(os.path.join(workdir, "seeds", f"seed{seed}_factors.npz"), **saved)
  return out


def run(config, workdir: str) -> dict:
  """Every seed of `recommend.seeds` (each kept in WORKDIR/seeds/ once done, and reused by a
  rerun of the same settings); results.json with the methods' mean and std over seeds."""
  t0 = time.time()
  check(config)
  r = config.recommend
  mesh = sharding.make_mesh(config.mesh.num_devices)
  for sub in ("listening", "seeds"):
    os.makedirs(os.path.join(workdir, sub), exist_ok=True)
  digest = checkpoint.config_hash({**{s: config[s].to_dict() for s in ("data", "model", "task", "train", "optim", "eval")},
                                   "recommend": {k: v for k, v in r.to_dict().items() if k != "seeds"},
                                   "audio_folder": os.path.abspath(config.data.manual_dir) if config.data.manual_dir else ""})
  sources, info = pipeline.load(config.data)
  plays, read_report = None, None
  if r.plays_file:  # real listening data over the dataset's clips
    clip_ids, splits, song_of_clip = clip_songs(sources, info, config.data.name)
    plays, read_report = read_listening(r.plays_file, clip_ids, song_of_clip)
    songs = listening.SongAttributes(values=np.zeros((len(clip_ids), 0), np.float32), names=(), song_ids=clip_ids,
                                     split=splits, piece=np.zeros(len(clip_ids), np.int32))
    stat = os.stat(r.plays_file)
    digest = checkpoint.config_hash({"settings": digest, "plays": [os.path.abspath(r.plays_file), stat.st_size,
                                                                   stat.st_mtime_ns]})
  else:
    songs = listening.embedded_song_attributes(config.data.config, data_dir=config.data.data_dir or None)
  features = None
  per_seed = {}
  for seed in r.seeds:
    path = os.path.join(workdir, "seeds", f"seed{seed}.json")
    if os.path.exists(path):
      with open(path) as f:
        kept = json.load(f)
      if kept.get("settings_hash") == digest:
        per_seed[str(seed)] = kept
        continue
    if features is None:
      features = content_features(config, songs, sources, int(info.sample_rate))
    per_seed[str(seed)] = {**one_seed(config, int(seed), songs, features, mesh, workdir, sources, plays),
                           "settings_hash": digest}
    metrics.write_json(path, per_seed[str(seed)])
  k = f"map@{r.k}"
  methods = {}
  for name in per_seed[str(r.seeds[0])]["methods"]:
    runs = [s["methods"][name] for s in per_seed.values()]
    methods[name] = {k: float(np.mean([m[k] for m in runs])), f"{k}_std": float(np.std([m[k] for m in runs])),
                     "auc": float(np.mean([m["auc"] for m in runs])), "auc_std": float(np.std([m["auc"] for m in runs])),
                     "users": [m["users"] for m in runs]}
  best = max((m for m in methods if m in CONTENT), key=lambda m: methods[m][k])
  results = {"method": best, k: methods[best][k], "auc": methods[best]["auc"], "methods": methods,
             "seeds": per_seed, "simulated_listeners": not r.plays_file, "plays_file": read_report,
             "config_hash": checkpoint.config_hash(config.to_dict()),
             "dataset": info.name, "wall_time_s": time.time() - t0}
  table = summary(methods, r.k, len(per_seed))
  with open(os.path.join(workdir, "recommendation.md"), "w") as f:
    f.write(table + "\n")
  metrics.write_json(os.path.join(workdir, "results.json"), results)
  print(table)
  return results


def summary(methods: dict, k: int, n_seeds: int) -> str:
  """The methods as a Markdown table: mAP@k and AUC, mean ± std over the seeds."""
  lines = [f"| method | mAP@{k} (mean ± std, {n_seeds} seeds) | AUC (mean ± std) | test users per seed |",
           "|---|---|---|---|"]
  for name, m in methods.items():
    lines.append(f"| {name} | {m[f'map@{k}']:.4f} ± {m[f'map@{k}_std']:.4f} | {m['auc']:.4f} ± "
                 f"{m['auc_std']:.4f} | {', '.join(map(str, m['users']))} |")
  return "\n".join(lines)


recommend = run  # mirjax.main's name for the job
