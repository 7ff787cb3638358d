"""A user's own folder of tagged audio as random-access splits of fixed-length clips.

`load_folder` builds the `mirjax_audio_folder` TFDS dataset on first use (progress bar per
split) and reads the cache afterwards; see `mirjax.data.builders.audio_folder` for the
folder layout and how bad files are skipped and counted. No TensorFlow is imported.
"""
import os

import numpy as np
import tensorflow_datasets as tfds

from mirjax.data import default_data_dir
from mirjax.data.builders import audio_folder
from mirjax.data.info import Info
from mirjax.data.prepare import prepared


class NumpySource:
  """A TFDS data source whose examples hold numpy values only: TFDS gives int32 scalar
  features as Python ints, this gives them as np.int32 (text stays bytes).

  Supports len() and [i] -> dict, e.g. {'audio': int16 (clip_samples,), 'tags': uint8
  (n_tags,), 'file_index': int32 (), 'clip_index': int32 ()} for a folder dataset.
  """

  def __init__(self, source):
    self.source = source

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, i) -> dict:
    return {k: np.int32(v) if isinstance(v, int) else v for k, v in self.source[i].items()}

  def __repr__(self) -> str:
    return f"NumpySource({self.source!r})"


def load_folder(manual_dir, data_dir=None, sample_rate: int = 16000, clip_seconds: float = 10.0):
  """Builds (first call) or reuses (later calls) the dataset of an audio folder.

  Args:
    manual_dir: the folder with audio files and tags.csv (layout in
      `mirjax.data.builders.audio_folder.LAYOUT`).
    data_dir: TFDS data dir; default `default_data_dir()`.
    sample_rate: rate in Hz the audio is resampled to (default 16000).
    clip_seconds: files are cut into clips of this many seconds (default 10.0).

  Returns:
    (sources, info): sources maps split name ('train', 'valid', 'test'; splits with no
    clip are absent) to a `NumpySource`; info is a `mirjax.data.info.Info`.

  Raises:
    audio_folder.FolderError: the folder or tags.csv is missing or malformed.
    ValueError: sample_rate or clip_seconds is not positive.
  """
  builder = prepared(lambda: audio_folder.make_builder(manual_dir, data_dir or default_data_dir(),
                                                      sample_rate, clip_seconds),
                     download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  meta = builder.info.metadata
  splits = [s for s in audio_folder.SPLITS if s in builder.info.splits]
  sources = {s: NumpySource(builder.as_data_source(s)) for s in splits}
  skipped = dict(meta["skipped_files"])
  info = Info(
      name=f"folder/{builder.builder_config.name}", tag_names=tuple(meta["tag_names"]),
      sample_rate=int(meta["sample_rate"]),
      clip_samples=int(meta["clip_samples"]),
      num_examples={s: int(builder.info.splits[s].num_examples) for s in splits},
      skipped=int(meta["skipped"]), skipped_files=dict(sorted(skipped.items())),
      too_short_files=tuple(meta["too_short_files"]), files=tuple(meta["files"]),
      truncated_files=dict(meta.get("truncated_files", {})),
      untagged_files=tuple(meta.get("untagged_files", ())))
  return sources, info
