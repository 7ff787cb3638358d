"""TFDS builder `mirjax_gtzan`: GTZAN genre classification from a local folder.

The folder (the builder's `manual_dir`) is GTZAN as distributed: `genres/<genre>/
<genre>.NNNNN.wav`, 30 s excerpts at 22,050 Hz, ten genres of 100 (the folder named may be
`genres` itself or the one holding it). Nothing is downloaded. The split is the
fault-filtered one (`gtzan_splits`: 443 / 197 / 290 files). A file that cannot be read
(GTZAN's own `jazz.00054.wav` is corrupt) is skipped, counted, and listed in a warning and
in the dataset's metadata. Audio is resampled to the config's rate and stored as int16.
"""
import dataclasses
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from mirjax.data import audio_io, parallel
from mirjax.data.builders import folder_digest, gtzan_splits, skip_warning

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
GENRES = gtzan_splits.GENRES
LAYOUT = """\
Expected layout of a GTZAN folder:
  DIR/genres/blues/blues.00000.wav ... DIR/genres/rock/rock.00099.wav
  (ten genre folders: blues classical country disco hiphop jazz metal pop reggae rock;
  DIR may also be the genres folder itself). Pass it as --config.data.manual_dir=DIR.
"""


class GTZANError(ValueError):
  """The GTZAN folder is missing or holds none of the split's files."""


def genres_dir(folder) -> str:
  """The folder holding the ten genre folders: `folder/genres` or `folder` itself."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise GTZANError(f"GTZAN folder not found: {folder!r}.\n{LAYOUT}")
  for root in (os.path.join(folder, "genres"), folder):
    if any(os.path.isdir(os.path.join(root, g)) for g in GENRES):
      return root
  raise GTZANError(f"no genre folders (blues, classical, ...) in {folder!r}.\n{LAYOUT}")


@dataclasses.dataclass(eq=False)
class GTZANConfig(tfds.core.BuilderConfig):
  """The fault-filtered split at one sample rate, for one folder; see `make_builder`.

  Attributes:
    sample_rate: audio is resampled to this rate, in Hz.
    workers: processes decoding files.
  """
  sample_rate: int = 16000
  workers: int = dataclasses.field(default_factory=parallel.default_workers)


class GTZAN(tfds.core.GeneratorBasedBuilder):
  """GTZAN excerpts with their genre, fault-filtered split.

  Features: `audio` (samples,) int16 PCM at the config's rate; `label` int32, an index into
  `GENRES` (also `metadata["class_names"]`); `path` text, relative to the genres folder.
  """
  name = "mirjax_gtzan"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def __init__(self, **kwargs):
    kwargs.setdefault("file_format", "array_record")  # the only format readable without TF
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    if not isinstance(self.builder_config, GTZANConfig):
      raise ValueError("mirjax_gtzan needs a config made from the folder: use "
                       "mirjax.data.builders.gtzan.make_builder(manual_dir, data_dir).")
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "label": tfds.features.Tensor(shape=(), dtype=np.int32),
            "path": tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    root = genres_dir(dl_manager.manual_dir)
    self._skipped = {}
    per_split = {}
    for split in SPLITS:
      paths = gtzan_splits.files(split)
      headers = parallel.imap(audio_io.try_duration, [os.path.join(root, p) for p in paths],
                              cfg.workers, f"{self.name}: reading {split} headers", unit="file")
      per_split[split] = []
      for path, seconds in zip(paths, headers):
        if isinstance(seconds, str):
          self._skipped[path] = seconds
        else:
          per_split[split].append(path)
    if not any(per_split.values()):
      raise GTZANError(f"no file of the GTZAN split could be read under {root!r}.\n"
                       + self._warning())
    return {s: self._generate_examples(root, s, paths) for s, paths in per_split.items() if paths}

  def _generate_examples(self, root, split, paths):
    cfg = self.builder_config
    decoded = parallel.imap(audio_io.try_decode, [(os.path.join(root, p), cfg.sample_rate)
                                                  for p in paths],
                            cfg.workers, f"{self.name}: decoding {split}", unit="file")
    for path, audio in zip(paths, decoded):
      if isinstance(audio, str):  # a readable header on an undecodable body
        self._skipped[path] = audio
        continue
      yield path, {"audio": audio, "label": np.int32(GENRES.index(path.split("/")[0])),
                   "path": path}

  def _download_and_prepare(self, dl_manager, download_config=None):
    super()._download_and_prepare(dl_manager, download_config)
    self.info.metadata.update(
        class_names=list(GENRES), sample_rate=self.builder_config.sample_rate,
        split="fault-filtered", skipped=len(self._skipped),
        skipped_files=dict(sorted(self._skipped.items())))
    if self._skipped:
      logger.warning("%s", self._warning())

  def _warning(self) -> str:
    return skip_warning(self.name, self._skipped)


def make_builder(manual_dir, data_dir, sample_rate: int = 16000) -> GTZAN:
  """The builder of one GTZAN folder at one sample rate (config name: rate + folder hash).

  Build with `builder.download_and_prepare(download_config=
  tfds.download.DownloadConfig(manual_dir=manual_dir))`; `mirjax.data.public.load_gtzan`
  does both.
  """
  if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
    raise ValueError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
  root = genres_dir(manual_dir)
  paths = [p for s in SPLITS for p in gtzan_splits.files(s)]
  digest = folder_digest(root, paths, salt=f"filtered\0{int(sample_rate)}")
  cfg = GTZANConfig(name=f"filtered_sr{int(sample_rate)}_{digest}",
                    description="GTZAN, fault-filtered split", sample_rate=int(sample_rate))
  return GTZAN(config=cfg, data_dir=os.fspath(data_dir))
