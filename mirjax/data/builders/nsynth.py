"""NSynth instrument-family classification (Engel et al. 2017) from a local folder, as a
`labelled_audio` dataset.

The folder holds the official splits as distributed: `nsynth-train/`, `nsynth-valid/` and
`nsynth-test/`, each with `examples.json` (note name -> its attributes, among them
`instrument_family` and `instrument_family_str`) and `audio/<note name>.wav` (4 s at
16 kHz). Any split may be absent. The label is the instrument family (11 classes).
"""
import json
import os

from mirjax.data.builders import labelled_audio

FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
            "synth_lead", "vocal")  # NSynth's instrument_family 0..10
FOLDERS = {"train": "nsynth-train", "valid": "nsynth-valid", "test": "nsynth-test"}
LAYOUT = """\
Expected layout of an NSynth folder:
  DIR/nsynth-train/examples.json  DIR/nsynth-train/audio/bass_synthetic_033-022-050.wav ...
  DIR/nsynth-valid/...            DIR/nsynth-test/...   (any of the three)
Pass it as --config.data.manual_dir=DIR.
"""


class NSynthError(labelled_audio.DatasetFolderError):
  """The NSynth folder or an examples.json is missing or malformed."""


def items(folder) -> list:
  """Every note of the splits present, labelled with its instrument family."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise NSynthError(f"NSynth folder not found: {folder!r}.\n{LAYOUT}")
  out = []
  for split, sub in FOLDERS.items():
    path = os.path.join(folder, sub, "examples.json")
    if not os.path.isfile(path):
      continue
    try:
      with open(path, encoding="utf-8") as f:
        notes = json.load(f)
    except ValueError as err:
      raise NSynthError(f"{path!r} is not valid JSON ({err}).") from err
    for name, note in sorted(notes.items()):
      family = note.get("instrument_family")
      if not isinstance(family, int) or not 0 <= family < len(FAMILIES) or (
          note.get("instrument_family_str", FAMILIES[family]) != FAMILIES[family]):
        raise NSynthError(f"{path!r}: note {name!r} has no valid instrument_family "
                          f"(0-10, one of {FAMILIES}).")
      out.append(labelled_audio.Item(f"{sub}/audio/{name}.wav", family, split))
  if not out:
    raise NSynthError(f"no nsynth-*/examples.json in {folder!r}.\n{LAYOUT}")
  return out


def make_builder(manual_dir, data_dir, sample_rate: int = 16000):
  """The builder of one NSynth folder (instrument family) at one sample rate."""
  index = tuple(f"{sub}/examples.json" for sub in FOLDERS.values())
  return labelled_audio.make_builder("nsynth/instrument_family", manual_dir, items(manual_dir),
                                     FAMILIES, data_dir, sample_rate, index_files=index)
