"""Song-factor datasets: the clips of an audio dataset, each with its song's latent factors
(WMF of listening data, mirjax/unsupervised/wmf.py) as the target a network regresses
(task "regression"; content-based recommendation, mirjax/jobs/recommend.py, writes them).

Opened like any dataset: `--config.data.name=song_factors --config.data.manual_dir=DIR`.
The examples keep the audio dataset's labels ("tags" or "label"), so the same clips and
splits also train a tagger or classifier (the supervised pre-training of
mirjax/jobs/pretrain.py compares both kinds of source task on them).
An example is the audio dataset's example plus "factors": float32 (k,), and, where the
folder has them, the statistics of the weighted prediction error (`wpe_terms`):
"wpe_gram" (k, k), "wpe_b" (k,) and "wpe_c" ().

The folder holds
  factors.json   {"base": the audio dataset's data config fields ({"name": "embedded",
                  "config": "default", ...}), "dim": k, "splits": {split: n_songs}, ...}
  factors.npz    per split S: "S_ids" (n,) str, each "<audio split>/<example index>" of the
                  audio dataset, "S_factors" (n, k) float32, and optionally "S_wpe_gram",
                  "S_wpe_b", "S_wpe_c"
"""
import json
import os

import numpy as np

from mirjax import metrics
from mirjax.data.info import Info
from mirjax.errors import DataError

MANIFEST = "factors.json"
ARRAYS = "factors.npz"
WPE = ("wpe_gram", "wpe_b", "wpe_c")
BASE_FIELDS = ("name", "config", "label", "manual_dir", "sample_rate", "clip_seconds", "convention", "top_k",
               "fold")


def wpe_terms(user_factors: np.ndarray, users: np.ndarray, songs: np.ndarray, confidence: np.ndarray,
              n_songs: int) -> dict:
  """Per song i, the terms of its weighted prediction error over the training users U,
  WPE_i(y) = sum_u c_ui (p_ui - x_u^T y)^2 / |U| = (y^T A_i y - 2 b_i^T y + c_i) / |U|
  (the weighted prediction error of "Deep content-based music recommendation", NIPS 2013,
  with p and c of Hu et al. 2008: p_ui = 1 for a play, c_ui = 1 for none), with A_i = X^T C_i X, b_i = X^T C_i p_i and c_i = sum_u c_ui p_ui.

  user_factors (|U|, k); users, songs, confidence: one entry per play (users index rows of
  user_factors). Returns {"wpe_gram": (n_songs, k, k), "wpe_b": (n_songs, k), "wpe_c":
  (n_songs,)}, already divided by |U|, float32."""
  X = np.asarray(user_factors, np.float64)
  n_users, k = X.shape
  users, songs = np.asarray(users), np.asarray(songs)
  for name, index, n in (("users", users, n_users), ("songs", songs, n_songs)):
    if index.size and (index.min() < 0 or index.max() >= n):
      raise ValueError(f"wpe_terms: {name} must index [0, {n}), got [{index.min()}, {index.max()}]")
  c = np.asarray(confidence, np.float64)
  gram = np.broadcast_to(X.T @ X, (n_songs, k, k)).copy()  # X^T X: every c_ui = 1
  b = np.zeros((n_songs, k))
  for start in range(0, len(users), 4096):  # + X^T (C_i - I) X and X^T C_i p_i over the plays, in bounded memory
    part = slice(start, start + 4096)
    x = X[users[part]]
    np.add.at(gram, songs[part], x[:, :, None] * x[:, None, :] * (c[part] - 1.0)[:, None, None])
    np.add.at(b, songs[part], x * c[part, None])
  const = np.bincount(songs, weights=c, minlength=n_songs)
  return {"wpe_gram": (gram / n_users).astype(np.float32), "wpe_b": (b / n_users).astype(np.float32),
          "wpe_c": (const / n_users).astype(np.float32)}


def digest(folder: str) -> str:
  """A short hash of a song-factor folder's arrays and manifest: runs trained on it are
  kept under a name with it, so new factors never resume an old run."""
  import hashlib  # pylint: disable=import-outside-toplevel
  h = hashlib.sha1()
  with open(os.path.join(folder, MANIFEST), "rb") as f:
    h.update(f.read())
  with np.load(os.path.join(folder, ARRAYS)) as z:  # the contents: a zip's bytes carry its time of writing
    for name in sorted(z.files):
      h.update(name.encode())
      h.update(np.ascontiguousarray(z[name]).tobytes())
  return h.hexdigest()[:12]


def write(folder: str, base: dict, splits: dict, **extra_meta):
  """Write a song-factor folder. `base`: the audio dataset's data config (a dict, e.g.
  `config.data.to_dict()`); `splits`: {split: {"ids": (n,) str, "factors": (n, k), and
  optionally the `wpe_terms` of those songs}}. Written whole or not at all."""
  os.makedirs(folder, exist_ok=True)
  arrays, dims = {}, set()
  for split, fields in splits.items():
    ids, factors = np.asarray(fields["ids"]).astype(str), np.asarray(fields["factors"], np.float32)
    if factors.ndim != 2 or len(ids) != len(factors):
      raise ValueError(f"split {split!r}: {len(ids)} ids and factors of shape {factors.shape}")
    dims.add(factors.shape[1])
    arrays[f"{split}_ids"], arrays[f"{split}_factors"] = ids, factors
    for k in WPE:
      if k in fields:
        arrays[f"{split}_{k}"] = np.asarray(fields[k], np.float32)
  if len(dims) != 1:
    raise ValueError(f"every split needs the same number of factors, got {sorted(dims)}")
  tmp = os.path.join(folder, ARRAYS + ".tmp.npz")
  np.savez(tmp, **arrays)
  os.replace(tmp, os.path.join(folder, ARRAYS))
  metrics.write_json(os.path.join(folder, MANIFEST), {
      "base": {k: base[k] for k in BASE_FIELDS if k in base}, "dim": dims.pop(),
      "splits": {s: len(f["ids"]) for s, f in splits.items()}, **extra_meta})


class FactorSource:
  """The examples of an audio dataset named by ids "<split>/<index>", each with its targets."""

  def __init__(self, audio_sources: dict, ids, targets: dict):
    self.audio_sources, self.targets = audio_sources, targets
    self.rows = []
    for song_id in ids:
      split, _, index = str(song_id).partition("/")
      if split not in audio_sources or not index.isdigit() or int(index) >= len(audio_sources[split]):
        raise DataError(f"song id {song_id!r} names no example of the audio dataset (splits "
                        f"{ {s: len(v) for s, v in audio_sources.items()} })")
      self.rows.append((split, int(index)))

  def __len__(self):
    return len(self.rows)

  def __getitem__(self, i):
    split, index = self.rows[i]
    return {**self.audio_sources[split][index], **{k: v[i] for k, v in self.targets.items()}}


def load(cfg, data_dir, load_audio):
  """(sources, Info) of the song-factor folder `cfg.manual_dir`; `load_audio(base_cfg)` opens
  the audio dataset (mirjax.data.pipeline's loader, given `cfg` with the base's fields)."""
  folder = cfg.manual_dir
  manifest, arrays = os.path.join(folder, MANIFEST), os.path.join(folder, ARRAYS)
  if not (os.path.exists(manifest) and os.path.exists(arrays)):
    raise DataError(f"{folder} holds no {MANIFEST} and {ARRAYS}: --config.data.manual_dir must name a "
                    "song-factor folder (WORKDIR/factors/... of a recommend or pretrain run)")
  with open(manifest) as f:
    meta = json.load(f)
  base = cfg.copy_and_resolve_references()
  with base.unlocked():
    base.update(meta["base"])
  audio, audio_info = load_audio(base, data_dir)
  sources = {}
  with np.load(arrays) as z:
    for split in meta["splits"]:
      targets = {"factors": z[f"{split}_factors"],
                 **{k: z[f"{split}_{k}"] for k in WPE if f"{split}_{k}" in z.files}}
      sources[split] = FactorSource(audio, z[f"{split}_ids"], targets)
  if "train" not in sources:
    raise DataError(f"{folder} has no 'train' songs (splits: {sorted(sources)})")
  info = Info(name=f"song_factors/{audio_info.name}/{meta.get('name', 'factors')}",
              sample_rate=audio_info.sample_rate, num_examples={s: len(v) for s, v in sources.items()},
              clip_samples=audio_info.clip_samples, target_dim=int(meta["dim"]),
              tag_names=audio_info.tag_names, class_names=audio_info.class_names)
  return sources, info
