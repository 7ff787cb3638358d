"""GTZAN genre classification from a local folder, as a `labelled_audio` dataset.

The folder is GTZAN as distributed: `genres/<genre>/<genre>.NNNNN.wav`, 30 s excerpts at
22,050 Hz, ten genres of 100 (the folder named may be `genres` itself or the one holding
it). Nothing is downloaded. The split is the fault-filtered one (`gtzan_splits`: 443 / 197
/ 290 files). A file that cannot be read (GTZAN's own `jazz.00054.wav` is corrupt) is
skipped, counted and reported.
"""
import os

from mirjax.data.builders import gtzan_splits, labelled_audio

GENRES = gtzan_splits.GENRES
LAYOUT = """\
Expected layout of a GTZAN folder:
  DIR/genres/blues/blues.00000.wav ... DIR/genres/rock/rock.00099.wav
  (ten genre folders: blues classical country disco hiphop jazz metal pop reggae rock;
  DIR may also be the genres folder itself). Pass it as --config.data.manual_dir=DIR.
"""


class GTZANError(labelled_audio.DatasetFolderError):
  """The GTZAN folder is missing or holds no genre folder."""


def genres_dir(folder) -> str:
  """The folder holding the ten genre folders: `folder/genres` or `folder` itself."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise GTZANError(f"GTZAN folder not found: {folder!r}.\n{LAYOUT}")
  for root in (os.path.join(folder, "genres"), folder):
    if any(os.path.isdir(os.path.join(root, g)) for g in GENRES):
      return root
  raise GTZANError(f"no genre folders (blues, classical, ...) in {folder!r}.\n{LAYOUT}")


def items() -> list:
  """The fault-filtered split's files, with their genre as the label."""
  return [labelled_audio.Item(p, GENRES.index(p.split("/")[0]), s)
          for s in labelled_audio.SPLITS for p in gtzan_splits.files(s)]


def make_builder(manual_dir, data_dir, sample_rate: int = 16000):
  """The builder of one GTZAN folder at one sample rate."""
  return labelled_audio.make_builder("gtzan/filtered", genres_dir(manual_dir), items(), GENRES,
                                     data_dir, sample_rate)
