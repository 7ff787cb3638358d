"""The multiscale k-means job (`config.job = "kmeans"`, configs/kmeans.py): unsupervised
feature learning as in "Multiscale approaches to music audio feature learning" (Dieleman &
Schrauwen, ISMIR 2013), then an MLP tagger on the learned features.

  1. every clip -> the levels of a multiscale representation (mirjax/audio/multiscale.py:
     multiresolution spectrograms, a Gaussian or a Laplacian pyramid);
  2. per level (`kmeans.scales`) and window width (`kmeans.windows`, frames): windows
     sampled from the training clips, PCA-whitened, and a spherical k-means dictionary of
     `kmeans.k` atoms learned on them, sharded over the mesh (mirjax/unsupervised/);
  3. every clip of every split -> each level's windows whitened, encoded against that
     dictionary (a convolution over time, rectified) and pooled over time (mean, max), all
     concatenated: one summary vector per clip, written to WORKDIR/features/ with the
     clip's tags (mirjax/data/features.py reads them as a dataset);
  4. the train job fits the config's "mlp" model on those features in WORKDIR (checkpoints,
     metrics, results.json: macro ROC-AUC and PR-AUC as for every tagger).

`kmeans.k = 0` skips k-means: the pooled whitened windows themselves are the features (the
paper's baseline). A killed run resumes: the dictionaries (WORKDIR/features/dictionary.npz)
and each split's features are kept once written and reused while the settings they came
from are unchanged; training resumes from its checkpoint. WORKDIR/dictionary.png shows
atoms of the widest window, de-whitened, per level.
"""
import copy
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mirjax import checkpoint, metrics, sharding
from mirjax.audio import multiscale
from mirjax.data import features as features_lib, pipeline
from mirjax.errors import ConfigError
from mirjax.jobs import train
from mirjax.unsupervised import encoding, kmeans as kmeans_lib, whitening

FEATURES = "features"  # WORKDIR/features: the feature dataset this job writes


def levels_of(config) -> list:
  """The level indices `kmeans.scales` selects ("all" or "0,2": comma-separated indices)."""
  k = config.kmeans
  n = len(k.n_ffts) if k.representation == "multires" else k.levels
  if str(k.scales) == "all":
    return list(range(n))
  try:
    chosen = sorted({int(s) for s in str(k.scales).split(",") if s.strip()})
  except ValueError:
    chosen = []
  if not chosen or chosen[0] < 0 or chosen[-1] >= n:
    raise ConfigError(f"kmeans.scales={k.scales!r}: 'all' or comma-separated level indices in "
                      f"[0, {n - 1}] ({k.representation} has {n} levels)")
  return chosen


def check(config):
  """ConfigErrors for settings that cannot work, before any data is read."""
  k = config.kmeans
  if k.representation not in multiscale.REPRESENTATIONS:
    raise ConfigError(f"kmeans.representation={k.representation!r}: choose one of {multiscale.REPRESENTATIONS}")
  if k.encoder not in encoding.ENCODERS:
    raise ConfigError(f"kmeans.encoder={k.encoder!r}: choose one of {encoding.ENCODERS}")
  if k.k < 0 or not k.windows or min(k.windows) < 1:
    raise ConfigError(f"kmeans.k={k.k} must be >= 0 (0: no k-means) and kmeans.windows={tuple(k.windows)} "
                      "positive widths in frames")
  if k.minibatch_size and k.minibatch_size < max(k.k, 1):
    raise ConfigError(f"kmeans.minibatch_size={k.minibatch_size} must be at least k={k.k} (or 0: full batches)")
  if config.model.name != "mlp":
    raise ConfigError(f"the kmeans job trains model 'mlp' on its features, not {config.model.name!r}")
  if jax.process_count() > 1:
    raise ConfigError("the kmeans job runs in one process (over all of its devices)")
  levels_of(config)


def settings(config) -> dict:
  """What the features depend on: the data, the representation, the dictionaries and the seed."""
  return {"data": config.data.to_dict(), "kmeans": config.kmeans.to_dict(), "seed": int(config.seed)}


def _representation_fn(config, sr: int):
  k = config.kmeans
  chosen = levels_of(config)

  def levels(audio):
    out = multiscale.representation(audio, k.representation, sr=sr, n_ffts=tuple(k.n_ffts),
                                    hop_length=k.hop_length, n_mels=k.n_mels, levels=k.levels,
                                    compression=k.compression)
    return [out[l] for l in chosen]
  return levels


def sample_windows(config, source, mesh, sr: int, n_samples: int) -> dict:
  """{(level, width): windows (n, width * bins)}: `kmeans.windows_per_clip` random windows of
  every training clip (all of a clip's windows when it has fewer)."""
  k = config.kmeans
  rep = jax.jit(_representation_fn(config, sr), in_shardings=sharding.batch_sharding(mesh))
  rng = np.random.default_rng([config.seed, 15])
  picked = {}
  for audio, real in tqdm(pipeline.clip_batches(source, n_samples, k.batch_clips), desc="kmeans: windows",
                          total=-(-len(source) // k.batch_clips), unit="batch", leave=False):
    for level, S in zip(levels_of(config), rep(audio)):
      S = np.asarray(S)[:real]
      for width in k.windows:
        W = np.asarray(encoding.windows(S, width))  # (clips, positions, width * bins)
        take = min(k.windows_per_clip, W.shape[1])
        rows = np.stack([rng.choice(W.shape[1], take, replace=False) for _ in range(real)])
        picked.setdefault((level, width), []).append(np.take_along_axis(W, rows[..., None], 1).reshape(-1, W.shape[2]))
  return {key: np.concatenate(v) for key, v in picked.items()}


def learn(config, windows: dict, mesh) -> dict:
  """{(level, width): (Whitening, centroids (k, m) or None, k-means objective)}."""
  k = config.kmeans
  out = {}
  for i, (key, W) in enumerate(tqdm(sorted(windows.items()), desc="kmeans: dictionaries", unit="dict", leave=False)):
    w = whitening.fit_whitening(W, eps=0.0, n_components=k.pca_components or None, mesh=mesh)
    # the regulariser relative to the mean variance: one setting for every level and width
    w = w._replace(eps=float(k.whitening_eps * np.mean(w.variances)))
    if k.k == 0:
      out[key] = (w, None, float("nan"))
      continue
    z = np.asarray(whitening.whiten(w, W))
    rng = jax.random.fold_in(jax.random.key(config.seed), i)
    if k.minibatch_size:  # Sculley's mini-batch updates, `iterations` epochs of shuffled batches
      order = np.random.default_rng([config.seed, i]).permutation
      batches = (z[idx[s:s + k.minibatch_size]] for idx in (order(len(z)) for _ in range(k.iterations))
                 for s in range(0, len(z) - k.minibatch_size + 1, k.minibatch_size))
      res = kmeans_lib.minibatch_fit(batches, k.k, key=rng, init=k.init)
      res = res._replace(objective=np.append(res.objective, float(kmeans_lib.objective(z, res.centroids))))
    else:
      res = kmeans_lib.fit(z, k.k, key=rng, iterations=k.iterations, init=k.init, mesh=mesh)
    out[key] = (w, res.centroids, float(res.objective[-1]))
  return out


def save_dictionaries(path, learned, digest):
  """Write learned dictionaries to `path` (.npz) with the settings `digest` they belong to."""
  arrays = {"settings": np.array(digest)}
  for (level, width), (w, c, obj) in learned.items():
    p = f"l{level}_w{width}_"
    arrays.update({p + "mean": w.mean, p + "components": w.components, p + "variances": w.variances,
                   p + "eps": np.float64(w.eps), p + "objective": np.float64(obj)})
    if c is not None:
      arrays[p + "centroids"] = c
  tmp = path + ".tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def load_dictionaries(path, digest, keys):
  """The dictionaries of `keys` kept in `path`, or None when absent or of other settings."""
  if not os.path.exists(path):
    return None
  with np.load(path) as z:
    if str(z["settings"]) != digest:
      return None
    out = {}
    for level, width in keys:
      p = f"l{level}_w{width}_"
      w = whitening.Whitening(z[p + "mean"], z[p + "components"], z[p + "variances"], float(z[p + "eps"]))
      out[(level, width)] = (w, z[p + "centroids"] if p + "centroids" in z.files else None, float(z[p + "objective"]))
  return out


def learn_and_save(config, source, mesh, sr: int, n_samples: int, path: str, digest: str) -> dict:
  """Dictionaries learned from windows of the clips of `source`, kept in `path`."""
  learned = learn(config, sample_windows(config, source, mesh, sr, n_samples), mesh)
  save_dictionaries(path, learned, digest)
  return learned


def feature_program(config, learned: dict, sr: int, mesh):
  """`feature_fn`, jitted with its clips split over the mesh's data axis."""
  rows = sharding.batch_sharding(mesh)
  return jax.jit(feature_fn(config, learned, sr), in_shardings=rows, out_shardings=rows)


def clip_features(fn, source, n_samples: int, batch: int, mesh, desc: str) -> np.ndarray:
  """(len(source), D): `fn` (`feature_program`) of every clip's first n_samples."""
  rows = sharding.batch_sharding(mesh)
  return np.concatenate([np.asarray(fn(jax.device_put(audio, rows)))[:real] for audio, real in tqdm(
      pipeline.clip_batches(source, n_samples, batch), desc=desc, total=-(-len(source) // batch), unit="batch",
      leave=False)])


def feature_fn(config, learned: dict, sr: int):
  """audio (batch, samples) -> summary features (batch, D): per level and width, windows
  whitened, encoded (k > 0) and pooled, concatenated in (level, width) order."""
  k = config.kmeans
  rep = _representation_fn(config, sr)
  order = sorted(learned)
  consts = {key: (jnp.asarray(w.mean), jnp.asarray(w.components.T * w.scale()[None]),
                  None if c is None else jnp.asarray(c)) for key, (w, c, _) in learned.items()}

  def features(audio):
    levels = dict(zip(levels_of(config), rep(audio)))
    parts = []
    for level, width in order:
      mean, proj, c = consts[(level, width)]
      z = (encoding.windows(levels[level], width) - mean) @ proj  # Coates & Ng: whitened windows
      codes = z if c is None else encoding.encode(z, c, k.encoder)  # the dictionary convolved over time
      parts.append(encoding.pool(codes, tuple(k.poolings)))
    return jnp.concatenate(parts, axis=-1)
  return features


def extract(config, sources, learned, mesh, sr: int, n_samples: int, folder: str, digest: str) -> int:
  """Writes features_<split>.npz of every split not written yet with these settings; the
  features' width D."""
  fn = feature_program(config, learned, sr, mesh)
  done_file = os.path.join(folder, "splits_done.json")
  done = {}
  if os.path.exists(done_file):
    with open(done_file) as f:
      done = json.load(f)
  dim = None
  for split, source in sources.items():
    if done.get(split) == digest:
      continue
    feats = clip_features(fn, source, n_samples, config.kmeans.batch_clips, mesh, f"kmeans: {split} features")
    dim = feats.shape[1]
    targets = {}
    for name in ("tags", "label"):
      if len(source) and name in source[0]:
        targets[name] = np.stack([np.asarray(source[i][name]) for i in range(len(source))])
    features_lib.write_split(folder, split, feats, targets)
    done[split] = digest
    metrics.write_json(done_file, done)
  if dim is None:
    with np.load(os.path.join(folder, f"features_{next(iter(sources))}.npz")) as z:
      dim = z["features"].shape[1]
  return int(dim)


def plot_dictionary(path: str, learned: dict, bins: int, atoms: int = 16):
  """Atoms of each level's widest window, de-whitened into (frames x mel bands) patches."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  width = max(w for _, w in learned)
  keys = [key for key in sorted(learned) if key[1] == width and learned[key][1] is not None]
  if not keys:
    return
  fig, axes = plt.subplots(len(keys), atoms, figsize=(atoms * 0.7, len(keys) * 1.3), squeeze=False)
  for row, key in zip(axes, keys):
    w, c, _ = learned[key]
    patches = (c[:atoms] * np.sqrt(w.variances + w.eps)) @ w.components  # back to window space
    for ax, patch in zip(row, patches):
      ax.imshow(patch.reshape(width, bins).T, origin="lower", aspect="auto", cmap="RdBu_r")
      ax.set_xticks([])
      ax.set_yticks([])
    row[0].set_ylabel(f"level {key[0]}", fontsize=8)
  fig.suptitle(f"spherical k-means atoms, windows of {width} frames (time across, mel bands up)", fontsize=9)
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)


def tagger_config(config, folder: str, dim: int):
  """The train config of the MLP on the features in `folder`: `config` with its data replaced
  by that feature dataset."""
  c = copy.deepcopy(config)
  with c.unlocked():
    c.job = "train"
    del c["kmeans"]
  c.data.name, c.data.manual_dir = "features", os.path.abspath(folder)
  c.model.input_dim = int(dim)
  return c


def run(config, workdir: str) -> dict:
  """Learns the features (or reuses them), trains the MLP tagger; results.json of the run."""
  t0 = time.time()
  check(config)
  mesh = sharding.make_mesh(config.mesh.num_devices)
  sharding.local_batch_size(config.kmeans.batch_clips, mesh, name="kmeans.batch_clips")
  folder = os.path.join(workdir, FEATURES)
  os.makedirs(folder, exist_ok=True)
  sources, info = pipeline.load(config.data)
  if "train" not in sources:
    raise ConfigError(f"the dataset {info.name} has no training clips to learn a dictionary from")
  sr, n_samples = int(info.sample_rate), int(round(config.data.crop_seconds * info.sample_rate))
  digest = checkpoint.config_hash(settings(config))
  keys = [(l, w) for l in levels_of(config) for w in config.kmeans.windows]
  dict_path = os.path.join(folder, "dictionary.npz")
  learned = load_dictionaries(dict_path, digest, keys)
  t_learn = 0.0
  if learned is None:
    t = time.time()
    learned = learn_and_save(config, sources["train"], mesh, sr, n_samples, dict_path, digest)
    t_learn = time.time() - t
    plot_dictionary(os.path.join(workdir, "dictionary.png"), learned, int(config.kmeans.n_mels))
  t = time.time()
  dim = extract(config, sources, learned, mesh, sr, n_samples, folder, digest)
  t_extract = time.time() - t
  manifest = {"dataset": info.name, "name": f"{config.kmeans.representation}/k{config.kmeans.k}",
              "sample_rate": sr, "dim": dim, "splits": sorted(sources), "tag_names": list(info.tag_names),
              "class_names": list(info.class_names), "settings": settings(config), "settings_hash": digest,
              "dictionaries": {f"level {l}, width {w}": {"objective": learned[(l, w)][2],
                                                         "whitened_dims": int(len(learned[(l, w)][0].variances))}
                               for l, w in keys}}
  metrics.write_json(os.path.join(folder, features_lib.MANIFEST), manifest)
  results = dict(train.train_and_evaluate(tagger_config(config, folder, dim), workdir))
  results.update({"config_hash": checkpoint.config_hash(config.to_dict()), "feature_dim": dim,
                  "audio_dataset": info.name, "kmeans_objective": {k: v["objective"] for k, v in manifest["dictionaries"].items()},
                  "feature_learning_s": t_learn, "feature_extraction_s": t_extract,
                  "wall_time_s": time.time() - t0})
  metrics.write_results(workdir, results)
  return results


kmeans = run  # mirjax.main's name for the job
