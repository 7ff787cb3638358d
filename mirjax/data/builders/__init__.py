"""TFDS builders of mirjax's datasets (array_record, no TensorFlow needed)."""
import hashlib
import os

import numpy as np


def pcm_feature(samples: int | None = None):
  """The `audio` feature of every mirjax builder: int16 PCM of `samples` samples (None: each
  example's own length), stored as its raw bytes.

  TFDS's default encoding widens integers to an int64 list in the example's protobuf (a
  negative sample takes 10 bytes there): writing the records was most of a build's time
  (about 70 % of building MagnaTagATune, MP3 decoding included) and each record 3x the PCM
  before array_record's compression. Raw bytes are one copy each way, and reading gives the
  same int16 array, read-only (TFDS makes it with `np.frombuffer`).
  """
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return tfds.features.Tensor(shape=(samples,), dtype=np.int16,
                              encoding=tfds.features.Encoding.BYTES)


def folder_digest(root, rel_paths, index_files=(), salt: str = "") -> str:
  """A 16-hex-digit hash of a dataset folder: `salt`, the bytes of each index file present,
  and each listed file's size and modification time (or its absence). Builders put it in
  their config name, so a changed folder never reuses a stale build."""
  digest = hashlib.sha256(salt.encode())
  for name in index_files:
    path = os.path.join(root, name)
    if os.path.isfile(path):
      with open(path, "rb") as f:
        digest.update(f.read())
  for rel in rel_paths:
    try:
      st = os.stat(os.path.join(root, rel))
      digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except OSError:
      digest.update(f"{rel}\0missing\n".encode())
  return digest.hexdigest()[:16]


def skip_warning(dataset: str, skipped: dict, max_missing: int = 10) -> str:
  """A warning naming every file that is there but unreadable, and the missing ones (the
  first `max_missing`, then a count: a partial download misses thousands)."""
  missing = sorted(p for p, why in skipped.items() if "not found" in why)
  broken = sorted(p for p in skipped if p not in set(missing))
  lines = [f"{dataset}: skipped {len(skipped)} unreadable file(s) ({len(missing)} missing); "
           "they are listed in the dataset's metadata.json too:"]
  lines += [f"  {p}: {skipped[p]}" for p in broken]
  lines += [f"  {p}: missing" for p in missing[:max_missing]]
  if len(missing) > max_missing:
    lines.append(f"  ... and {len(missing) - max_missing} more missing")
  return "\n".join(lines)
