"""TFDS builder `mirjax_audio_folder`: a user's own folder of tagged audio, cut into clips.

The folder (the builder's `manual_dir`) holds audio files and a `tags.csv`; see `LAYOUT`.
The tag vocabulary and the clip length are only known from the folder, so the builder
config is made from it: `make_builder` reads tags.csv, names the config by a hash of
tags.csv, the listed files' sizes and modification times, the sample rate and the clip
length, and returns a builder. Change a file and the next `make_builder` gives a new
config, so a stale cache is never reused.

Bad files never stop a build: a missing, empty, undecodable or sample-less file is
skipped; files too short for one clip yield none. Both are counted, listed in a warning
at the end of the build and stored in `builder.info.metadata` (metadata.json). Only a
folder where no file gives a clip raises `FolderError`, before anything is written.
"""
import csv
import dataclasses
import hashlib
import logging
import os

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from mirjax.data import audio_io
from mirjax.data.builders import folder_digest, pcm_feature
from mirjax.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid",
                 "test": "test"}
TAGS_CSV = "tags.csv"
LAYOUT = """\
Expected layout of an audio folder:
  my_folder/
    tags.csv          columns: path,tags[,split]
    a.wav             any format soundfile reads: WAV, FLAC, OGG, MP3, AIFF, ...
    sub/b.flac
tags.csv example:
  path,tags,split
  a.wav,rock;guitar,train
  sub/b.flac,jazz,test
`path` is relative to the folder; `tags` are separated by ';'; `split` (optional) is
train, valid or test; rows without one go to train/valid/test 80/10/10 by a hash of the path.
"""


class FolderError(ValueError):
  """The audio folder or its tags.csv is missing or malformed."""


@dataclasses.dataclass(frozen=True)
class Row:
  """One line of tags.csv: `path` relative to the folder, its `tags` and its `split`."""
  path: str
  tags: tuple[str, ...]
  split: str


def hash_split(path: str) -> str:
  """Deterministic 80/10/10 train/valid/test assignment from the sha1 of `path`."""
  bucket = int.from_bytes(hashlib.sha1(path.encode("utf-8")).digest()[:8], "big") % 10
  return "train" if bucket < 8 else ("valid" if bucket == 8 else "test")


def read_tags_csv(folder) -> list[Row]:
  """Parses `folder/tags.csv`; rows in file order.

  Raises:
    FolderError: the folder or tags.csv is missing, a column is missing, a row has no
      path, a path is listed twice, a split is unknown, or no row has a tag.
  """
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise FolderError(f"audio folder not found: {folder!r}.\n{LAYOUT}")
  csv_path = os.path.join(folder, TAGS_CSV)
  if not os.path.isfile(csv_path):
    raise FolderError(f"no {TAGS_CSV} in {folder!r}.\n{LAYOUT}")
  with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
    reader = csv.DictReader(f)
    fields = [c.strip() for c in reader.fieldnames or ()]
    if "path" not in fields or "tags" not in fields:
      raise FolderError(f"{csv_path!r} needs a header with columns 'path' and 'tags'; "
                        f"found {fields}.\n{LAYOUT}")
    reader.fieldnames = fields
    rows, seen = [], set()
    for line, rec in enumerate(reader, start=2):
      path = (rec.get("path") or "").strip()
      if not path:
        raise FolderError(f"{csv_path!r} line {line}: empty 'path'.\n{LAYOUT}")
      if path in seen:
        raise FolderError(f"{csv_path!r} line {line}: {path!r} is listed twice; list each "
                          "file once with all its tags.")
      seen.add(path)
      tags = tuple(sorted({t.strip() for t in (rec.get("tags") or "").split(";") if t.strip()}))
      split = (rec.get("split") or "").strip().lower()
      if split and split not in SPLIT_ALIASES:
        raise FolderError(f"{csv_path!r} line {line}: split {split!r} is not one of "
                          f"{SPLITS} (or empty for a hash-based split).")
      rows.append(Row(path, tags, SPLIT_ALIASES[split] if split else hash_split(path)))
  if not any(r.tags for r in rows):
    raise FolderError(f"{csv_path!r} lists no tags{'' if rows else ' (no rows)'}.\n{LAYOUT}")
  return rows


def tag_vocabulary(rows) -> tuple[str, ...]:
  """All tags seen, sorted."""
  return tuple(sorted({t for r in rows for t in r.tags}))


def num_clips(samples: int, clip_samples: int) -> int:
  """Clips in `samples`: whole clips, plus the partial last one if at least half a clip."""
  n_full, rest = divmod(samples, clip_samples)
  return n_full + int(rest > 0 and 2 * rest >= clip_samples)


def cut_clips(audio: np.ndarray, clip_samples: int) -> np.ndarray:
  """Consecutive non-overlapping clips, (num_clips, clip_samples); see `num_clips`.

  The last partial clip is zero-padded if at least half a clip long, else dropped.
  """
  n = num_clips(len(audio), clip_samples)
  out = np.zeros((n, clip_samples), audio.dtype)
  out.reshape(-1)[:min(len(audio), n * clip_samples)] = audio[:n * clip_samples]
  return out


@dataclasses.dataclass(eq=False)
class AudioFolderConfig(tfds.core.BuilderConfig):
  """Config of one folder's dataset; make it with `config_for_folder`.

  Attributes:
    sample_rate: audio is resampled to this rate, in Hz (default 16000).
    clip_seconds: length of the clips files are cut into, in seconds (default 10.0).
    tag_names: the tag vocabulary, sorted; index i is `tags[i]` of an example.
  """
  sample_rate: int = 16000
  clip_seconds: float = 10.0
  tag_names: tuple[str, ...] = ()

  @property
  def clip_samples(self) -> int:
    return int(round(self.clip_seconds * self.sample_rate))


def config_for_folder(manual_dir, sample_rate: int = 16000,
                      clip_seconds: float = 10.0) -> AudioFolderConfig:
  """Reads `manual_dir/tags.csv` and names a config by a hash of the folder's contents.

  Args:
    manual_dir: the audio folder (see `LAYOUT`).
    sample_rate: output rate in Hz (default 16000).
    clip_seconds: clip length in seconds (default 10.0).
  """
  if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
    raise DataError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
  if not clip_seconds > 0 or round(clip_seconds * sample_rate) < 1:
    raise DataError(f"clip_seconds must be positive (at least one sample), got {clip_seconds!r}")
  rows = read_tags_csv(manual_dir)
  digest = folder_digest(manual_dir, [r.path for r in rows], (TAGS_CSV,),
                         salt=f"{int(sample_rate)}\0{float(clip_seconds)!r}")
  clip_ms = int(round(clip_seconds * 1000))
  return AudioFolderConfig(
      name=f"sr{int(sample_rate)}_clip{clip_ms}ms_{digest}",
      description=f"{len(rows)} files from an audio folder",
      sample_rate=int(sample_rate), clip_seconds=float(clip_seconds),
      tag_names=tag_vocabulary(rows))


class AudioFolder(tfds.core.GeneratorBasedBuilder):
  """A user's folder of tagged audio as 'train'/'valid'/'test' splits of fixed-length clips.

  Features: `audio` (clip_samples,) int16 PCM; `tags` (n_tags,) uint8 multi-hot;
  `file_index` int32 (row of tags.csv, 0-based: `info.metadata["files"][file_index]`);
  `clip_index` int32 (clip number within the file). Splits with no clips are left out.
  """
  name = "mirjax_audio_folder"
  VERSION = tfds.core.Version("1.0.1")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "1.0.1": "Audio stored as raw int16 bytes, not an int64 list: the same "
                            "examples, several times faster to write and to read."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def __init__(self, **kwargs):
    kwargs.setdefault("file_format", "array_record")  # the only format readable without TF
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    if not isinstance(cfg, AudioFolderConfig) or not cfg.tag_names:
      raise DataError("mirjax_audio_folder needs a config made from the folder: use "
                       "mirjax.data.builders.audio_folder.make_builder(manual_dir, data_dir).")
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "audio": pcm_feature(cfg.clip_samples),
            "tags": tfds.features.Tensor(shape=(len(cfg.tag_names),), dtype=np.uint8),
            "file_index": tfds.features.Tensor(shape=(), dtype=np.int32),
            "clip_index": tfds.features.Tensor(shape=(), dtype=np.int32),
        }),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    folder = os.fspath(dl_manager.manual_dir)
    rows = read_tags_csv(folder)
    if tag_vocabulary(rows) != cfg.tag_names:
      raise FolderError(f"{TAGS_CSV} in {folder!r} changed since this builder was made (or "
                        "belongs to another folder); call make_builder again.")
    self._skipped, self._too_short, self._rows = {}, [], rows
    self._truncated = {}
    per_split = {s: [] for s in SPLITS}
    for i, r in enumerate(rows):
      try:  # the header is enough to skip most bad files without decoding them
        header = audio_io.audio_info(os.path.join(folder, r.path))
        if header.truncated:  # kept (what it holds is audio), but said
          self._truncated[r.path] = f"{header.truncated}; {header.seconds:.2f} s of it are used"
        per_split[r.split].append((i, r))
      except audio_io.AudioReadError as err:
        self._skipped[r.path] = str(err)
    # TFDS cannot write an empty split: keep a split only once one of its files gives a
    # clip, dropping the bad files decoded on the way (decoding is deterministic).
    for items in per_split.values():
      while items and not len(self._clips(folder, items[0][1])):
        items.pop(0)
    if not any(per_split.values()):
      raise FolderError(f"no file listed in {TAGS_CSV} of {folder!r} gave a clip.\n"
                        + skip_report(self._report()))
    return {s: self._generate_examples(folder, s, items)
            for s, items in per_split.items() if items}

  def _clips(self, folder, row) -> np.ndarray:
    """A file's clips (float32), or none, recording why in _skipped / _too_short."""
    cfg = self.builder_config
    try:
      audio = audio_io.load_audio(os.path.join(folder, row.path), cfg.sample_rate)
    except audio_io.AudioReadError as err:
      self._skipped[row.path] = str(err)
      return np.zeros((0, cfg.clip_samples), np.float32)
    clips = cut_clips(audio, cfg.clip_samples)
    if not len(clips):
      self._too_short.append(row.path)
    return clips

  def _generate_examples(self, folder, split, items):
    cfg = self.builder_config
    index = {t: k for k, t in enumerate(cfg.tag_names)}
    for i, r in tqdm.tqdm(items, desc=f"{self.name} {split}", unit="file"):
      tags = np.zeros(len(cfg.tag_names), np.uint8)
      tags[[index[t] for t in r.tags]] = 1
      for k, clip in enumerate(self._clips(folder, r)):
        yield f"{i:08d}_{k:06d}", {"audio": audio_io.to_int16(clip), "tags": tags,
                                   "file_index": np.int32(i), "clip_index": np.int32(k)}

  def _download_and_prepare(self, dl_manager, download_config=None):
    super()._download_and_prepare(dl_manager, download_config)
    self.info.metadata.update(self._report())
    if self._skipped or self._too_short or self._truncated or self.info.metadata["untagged_files"]:
      logger.warning("%s", skip_report(self.info.metadata))

  def _report(self) -> dict:
    """The build's metadata (saved as metadata.json next to dataset_info.json)."""
    cfg = self.builder_config
    return {"tag_names": list(cfg.tag_names), "sample_rate": cfg.sample_rate,
            "clip_samples": cfg.clip_samples, "files": [r.path for r in self._rows],
            "skipped": len(self._skipped), "skipped_files": dict(sorted(self._skipped.items())),
            "too_short_files": sorted(self._too_short),
            "truncated_files": dict(sorted(self._truncated.items())),
            "untagged_files": [r.path for r in self._rows if not r.tags]}


def skip_report(metadata) -> str:
  """One message listing the skipped and the too-short files of a build."""
  lines = []
  skipped = metadata.get("skipped_files", {})
  if skipped:
    lines.append(f"mirjax_audio_folder: skipped {len(skipped)} unreadable file(s):")
    lines += [f"  {p}: {why}" for p, why in skipped.items()]
  short = metadata.get("too_short_files", [])
  if short:
    lines.append(f"mirjax_audio_folder: {len(short)} file(s) shorter than half a clip "
                 f"({metadata['clip_samples']} samples) gave no clip:")
    lines += [f"  {p}" for p in short]
  truncated = metadata.get("truncated_files", {})
  if truncated:
    lines.append(f"mirjax_audio_folder: {len(truncated)} truncated file(s) were used as far as "
                 "they go (re-copy them to use them whole):")
    lines += [f"  {p}: {why}" for p, why in truncated.items()]
  untagged = metadata.get("untagged_files", [])
  if untagged:
    lines.append(f"mirjax_audio_folder: {len(untagged)} file(s) have no tag in {TAGS_CSV}: they are "
                 "examples of no tag (negatives for every tag); give them tags or remove their rows "
                 "if that is not meant:")
    lines += [f"  {p}" for p in untagged[:20]] + ([f"  ... and {len(untagged) - 20} more"]
                                                  if len(untagged) > 20 else [])
  return "\n".join(lines)


def make_builder(manual_dir, data_dir, sample_rate: int = 16000,
                 clip_seconds: float = 10.0) -> AudioFolder:
  """The builder for one audio folder.

  Build it with `builder.download_and_prepare(download_config=
  tfds.download.DownloadConfig(manual_dir=manual_dir))`; read it with
  `builder.as_data_source(split)`. `mirjax.data.folder.load_folder` does both.

  Args:
    manual_dir: the audio folder (see `LAYOUT`).
    data_dir: TFDS data dir; the dataset goes to data_dir/mirjax_audio_folder/<config>/<VERSION>.
    sample_rate: output rate in Hz (default 16000).
    clip_seconds: clip length in seconds (default 10.0).
  """
  cfg = config_for_folder(manual_dir, sample_rate, clip_seconds)
  return AudioFolder(config=cfg, data_dir=os.fspath(data_dir))
