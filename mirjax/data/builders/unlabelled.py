"""Any folder of audio files, without labels, as a `labelled_audio` dataset (one class):
the input of self-supervised pre-training. Files are found recursively by extension and
split 80 / 10 / 10 by a hash of their path; unreadable ones are skipped and reported."""
import os

from mirjax.data.builders import labelled_audio
from mirjax.data.builders.audio_folder import hash_split

EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".aif", ".aiff")


def items(folder) -> list:
  """Every audio file under `folder` (relative paths, sorted), label 0, hashed split."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise labelled_audio.DatasetFolderError(f"audio folder not found: {folder!r}")
  paths = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder)
                 for f in files if f.lower().endswith(EXTENSIONS))
  if not paths:
    raise labelled_audio.DatasetFolderError(
        f"no audio files ({', '.join(EXTENSIONS)}) under {folder!r}")
  return [labelled_audio.Item(p, 0, hash_split(p)) for p in paths]


def make_builder(manual_dir, data_dir, sample_rate: int = 16000):
  return labelled_audio.make_builder("audio", manual_dir, items(manual_dir), ("audio",), data_dir,
                                     sample_rate)
