"""ESC-50 environmental sound classification (Piczak 2015) from a local folder, as a
`labelled_audio` dataset.

The folder is the distribution (the ESC-50 repository): `meta/esc50.csv` (columns
filename, fold, target, category, ...) and `audio/<filename>` (5 s, 44.1 kHz WAV). The
dataset has five folds for cross-validation; fold k is the test split, fold k + 1 (mod 5)
the validation split, and the other three the training split.
"""
import csv
import os

from mirjax.data.builders import labelled_audio
from mirjax.errors import DataError

META = os.path.join("meta", "esc50.csv")
LAYOUT = """\
Expected layout of an ESC-50 folder (the ESC-50 repository, e.g. ESC-50-master/):
  DIR/meta/esc50.csv   columns filename,fold,target,category,... (fold 1-5, target 0-49)
  DIR/audio/1-100032-A-0.wav ...
Pass it as --config.data.manual_dir=DIR and the test fold as --config.data.fold=K (1-5).
"""


class ESC50Error(labelled_audio.DatasetFolderError):
  """The ESC-50 folder or its esc50.csv is missing or malformed."""


def read_meta(folder):
  """(class_names indexed by target, rows (filename, fold, target)) of meta/esc50.csv."""
  path = os.path.join(os.fspath(folder), META)
  if not os.path.isdir(folder):
    raise ESC50Error(f"ESC-50 folder not found: {folder!r}.\n{LAYOUT}")
  if not os.path.isfile(path):
    raise ESC50Error(f"no {META} in {folder!r}.\n{LAYOUT}")
  rows, names = [], {}
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    missing = {"filename", "fold", "target", "category"} - set(reader.fieldnames or ())
    if missing:
      raise ESC50Error(f"{path!r} lacks columns {sorted(missing)}.\n{LAYOUT}")
    for line, r in enumerate(reader, start=2):
      try:
        fold, target = int(r["fold"]), int(r["target"])
      except ValueError as err:
        raise ESC50Error(f"{path!r} line {line}: {err}") from err
      if not 1 <= fold <= 5:
        raise ESC50Error(f"{path!r} line {line}: fold {fold} is not 1-5")
      names[target] = r["category"]
      rows.append((r["filename"], fold, target))
  if sorted(names) != list(range(len(names))):
    raise ESC50Error(f"{path!r}: targets {sorted(names)} are not 0..{len(names) - 1}")
  return tuple(names[t] for t in range(len(names))), rows


def make_builder(manual_dir, data_dir, fold: int = 1, sample_rate: int = 16000):
  """The builder of one ESC-50 folder with test fold `fold` (1-5) at one sample rate."""
  if fold not in (1, 2, 3, 4, 5):
    raise DataError(f"ESC-50 has folds 1-5; --config.data.fold={fold!r}")
  names, rows = read_meta(manual_dir)
  valid = fold % 5 + 1
  split = lambda k: "test" if k == fold else ("valid" if k == valid else "train")
  items = [labelled_audio.Item(os.path.join("audio", f), t, split(k)) for f, k, t in rows]
  return labelled_audio.make_builder(f"esc50/fold{fold}", manual_dir, items, names, data_dir,
                                     sample_rate, index_files=(META,))
