"""The public datasets, read from the real distributions in a folder the user names.

  sources, info = load_mtat("/data/magnatagatune", convention="clean")
  sources, info = load_gtzan("/data/gtzan")
  sources, info = load_esc50("/data/ESC-50-master", fold=1)
  sources, info = load_nsynth("/data/nsynth")

Each call builds the TFDS dataset on first use (progress bars, bad files skipped and
listed) and reads the cache afterwards. Nothing is downloaded and no TensorFlow is imported.
"""
import os

import tensorflow_datasets as tfds

from mirjax.data import default_data_dir
from mirjax.data.builders import esc50, gtzan, magnatagatune, nsynth, unlabelled
from mirjax.data.folder import NumpySource
from mirjax.data.info import Info
from mirjax.data.prepare import prepared


def _prepare(make_builder, manual_dir):
  builder = prepared(make_builder,
                     download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  splits = [s for s in ("train", "valid", "test") if s in builder.info.splits]
  sources = {s: NumpySource(builder.as_data_source(s)) for s in splits}
  return sources, builder.info.metadata, {s: len(sources[s]) for s in splits}


def load_mtat(manual_dir, data_dir=None, convention: str = "clean", sample_rate: int = 16000,
              top_k: int = magnatagatune.TOP_K):
  """MagnaTagATune from its distribution folder (layout: `magnatagatune.LAYOUT`).

  Args:
    manual_dir: the folder with annotations_final.csv, clip_info_final.csv and 0/..f/.
    data_dir: TFDS data dir; default `mirjax.data.default_data_dir()`.
    convention: "clean", "pons" or "all" (see `mirjax.data.builders.magnatagatune`).
    sample_rate: Hz the MP3s are resampled to (default 16000, the distribution's rate).
    top_k: number of most frequent tags kept (default 50).

  Returns:
    (sources, info): sources maps "train"/"valid"/"test" to random-access sources of
    {"audio": int16 (samples,), "tags": uint8 (top_k,), "clip_id", "mp3_path", ...};
    info is a `mirjax.data.info.Info` with `tag_names`.
  """
  sources, meta, counts = _prepare(lambda: magnatagatune.make_builder(
      manual_dir, data_dir or default_data_dir(), convention, sample_rate, top_k), manual_dir)
  return sources, Info(
      name=f"mtat/{convention}", sample_rate=int(meta["sample_rate"]), num_examples=counts,
      tag_names=tuple(meta["tag_names"]), skipped=int(meta["skipped"]),
      skipped_files=dict(meta["skipped_files"]))


def _load_labelled(make_builder):
  builder = prepared(make_builder)
  meta = builder.info.metadata
  splits = [s for s in ("train", "valid", "test") if s in builder.info.splits]
  sources = {s: NumpySource(builder.as_data_source(s)) for s in splits}
  return sources, Info(
      name=meta["dataset"], sample_rate=int(meta["sample_rate"]),
      num_examples={s: len(sources[s]) for s in splits}, class_names=tuple(meta["class_names"]),
      skipped=int(meta["skipped"]), skipped_files=dict(meta["skipped_files"]))


def load_gtzan(manual_dir, data_dir=None, sample_rate: int = 16000):
  """GTZAN from its distribution folder, fault-filtered split (layout: `gtzan.LAYOUT`).

  Returns:
    (sources, info): sources map "train"/"valid"/"test" to random-access sources of
    {"audio": int16 (samples,), "label": int32, "path": bytes}; info is a `mirjax.data.info.Info` with
    `class_names` (the ten genres).
  """
  return _load_labelled(lambda: gtzan.make_builder(manual_dir, data_dir or default_data_dir(), sample_rate))


def load_esc50(manual_dir, data_dir=None, fold: int = 1, sample_rate: int = 16000):
  """ESC-50 from its distribution folder with test fold `fold` (layout: `esc50.LAYOUT`);
  sources and info as `load_gtzan` (50 classes)."""
  return _load_labelled(lambda: esc50.make_builder(manual_dir, data_dir or default_data_dir(), fold,
                                                   sample_rate))


def load_nsynth(manual_dir, data_dir=None, sample_rate: int = 16000):
  """NSynth instrument families from the official split folders (layout: `nsynth.LAYOUT`);
  sources and info as `load_gtzan` (11 classes)."""
  return _load_labelled(lambda: nsynth.make_builder(manual_dir, data_dir or default_data_dir(), sample_rate))


def load_unlabelled(manual_dir, data_dir=None, sample_rate: int = 16000):
  """Every audio file under a folder, for self-supervised pre-training (split by a hash of
  the path); sources as `load_gtzan` with a single class."""
  return _load_labelled(lambda: unlabelled.make_builder(manual_dir, data_dir or default_data_dir(), sample_rate))
