"""Feature datasets: summary vectors a job wrote to a folder (mirjax/jobs/kmeans.py writes
WORKDIR/features/), opened like any dataset (`--config.data.name=features
--config.data.manual_dir=WORKDIR/features`). An example is {"features": float32 (D,),
"tags": uint8 (n_tags,)} (or "label": int32, or "factors": float32 (F,) to regress), so the train job fits a model that reads
`inputs["features"]` (models "mlp") on them.

The folder holds
  features.json       {"dataset", "sample_rate", "dim", "tag_names", "class_names", "splits", ...}
  features_<S>.npz    per split S: "features" (N, D) float32 and "tags" (N, n_tags) or "label" (N,)
Features are standardised with the training split's per-dimension mean and standard
deviation (the same numbers for every split), so a learning rate suits any feature set.
"""
import json
import os

import numpy as np

from mirjax.data.info import Info
from mirjax.errors import DataError

MANIFEST = "features.json"


class ArraySource:
  """Rows of named arrays as a random-access source of example dicts."""

  def __init__(self, arrays: dict):
    self.arrays = arrays
    self.n = len(next(iter(arrays.values())))

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {k: v[i] for k, v in self.arrays.items()}


def write_split(folder: str, split: str, features: np.ndarray, targets: dict):
  """WORKDIR/features_<split>.npz: features (N, D) float32 and the targets ({"tags": ...} or
  {"label": ...}), written whole or not at all."""
  path = os.path.join(folder, f"features_{split}.npz")
  tmp = path + ".tmp.npz"
  np.savez(tmp, features=np.asarray(features, np.float32), **targets)
  os.replace(tmp, path)


def load_features(folder: str, standardize: bool = True):
  """(sources {split: ArraySource}, Info) of a feature folder; Info.feature_dim is D."""
  path = os.path.join(folder, MANIFEST)
  if not os.path.exists(path):
    raise DataError(f"{folder} holds no {MANIFEST}: --config.data.manual_dir must name the features "
                    "folder a job wrote (e.g. WORKDIR/features of a `kmeans` run)")
  with open(path) as f:
    meta = json.load(f)
  sources = {}
  for split in meta["splits"]:
    file = os.path.join(folder, f"features_{split}.npz")
    if not os.path.exists(file):
      raise DataError(f"{file} is missing: the features of split {split!r} were not written "
                      "(was the job stopped?); run it again to finish them")
    with np.load(file) as z:
      sources[split] = {k: z[k] for k in z.files}
  if "train" not in sources:
    raise DataError(f"{folder} has no training features (splits: {sorted(sources)})")
  if standardize:
    train = sources["train"]["features"].astype(np.float64)
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-8, std, 1.0)  # constant dimensions stay 0
    for arrays in sources.values():
      arrays["features"] = ((arrays["features"] - mean) / std).astype(np.float32)
  info = Info(name=f"features/{meta['dataset']}/{meta.get('name', 'features')}",
              sample_rate=int(meta["sample_rate"]),
              num_examples={s: len(a["features"]) for s, a in sources.items()},
              tag_names=tuple(meta.get("tag_names", ())), class_names=tuple(meta.get("class_names", ())),
              feature_dim=int(meta["dim"]),
              target_dim=int(sources["train"]["factors"].shape[1]) if "factors" in sources["train"] else 0)
  return {s: ArraySource(a) for s, a in sources.items()}, info
