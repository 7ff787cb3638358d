"""The tag vocabulary of the embedded dataset and how a rendering maps to it.

Tag names are MagnaTagATune (MTAT) names wherever one fits. Every tag is a fact about
the rendering, not an annotation: the instruments that sounded, the drum pattern, the
tempo and loudness it was rendered at, and whether one part or several played.
"""
import numpy as np

from mirjax.errors import DataError

# Instrument tag -> General MIDI program (0-based), as named in TimGM6mb.sf2.
INSTRUMENTS: dict[str, int] = {
  "piano": 0,         # Acoustic Grand Piano
  "harpsichord": 6,   # Harpsichord
  "organ": 19,        # Church Organ
  "guitar": 24,       # Acoustic Guitar (nylon)
  "violin": 40,       # Violin
  "cello": 42,        # Cello
  "strings": 48,      # String Ensemble 1
  "harp": 46,         # Orchestral Harp
  "flute": 73,        # Flute
  "choir": 52,        # Choir Aahs
  "synth": 81,        # Lead 2 (sawtooth)
  "sitar": 104,       # Sitar
}

# A violin or cello part is also a string part, as MTAT annotators tag it.
IMPLIES: dict[str, tuple[str, ...]] = {"violin": ("strings",), "cello": ("strings",)}

# Drum patterns on GM channel 10: name -> tags it earns.
DRUMS: dict[str, tuple[str, ...]] = {
  "none": (),
  "backbeat": ("drums", "beat"),  # kick, snare and hi-hat
  "cymbals": ("drums",),          # ride cymbal and pedal hi-hat only: drums but no beat
}

# Tempo classes: rendered rate of the piece's median note value, in notes per minute.
TEMPI: dict[str, tuple[float, float]] = {
  "slow": (44.0, 56.0),
  "medium": (84.0, 104.0),
  "fast": (150.0, 180.0),
}

# Dynamics: (MIDI velocity range, clip RMS level range in dBFS).
DYNAMICS: dict[str, tuple[tuple[int, int], tuple[float, float]]] = {
  "quiet": ((38, 55), (-36.0, -32.0)),
  "medium": ((70, 90), (-26.0, -22.0)),
  "loud": ((105, 125), (-16.0, -13.0)),
}

TAGS: tuple[str, ...] = tuple(INSTRUMENTS) + (
  "drums", "beat", "fast", "slow", "loud", "quiet", "solo")


def multi_hot(instruments, drums: str, tempo: str, dynamics: str,
              solo: bool) -> np.ndarray:
  """Multi-hot uint8 vector over `TAGS` for one rendering.

  Args:
    instruments: instrument names (keys of `INSTRUMENTS`) of the parts that sounded.
    drums: a key of `DRUMS`.
    tempo: a key of `TEMPI`; only "fast" and "slow" are tags.
    dynamics: a key of `DYNAMICS`; only "loud" and "quiet" are tags.
    solo: True when exactly one part was rendered (no drums).
  """
  on = set(instruments) | set(DRUMS[drums])
  for name in instruments:
    on.update(IMPLIES.get(name, ()))
  on.update(t for t in (tempo, dynamics) if t in TAGS)
  if solo:
    on.add("solo")
  unknown = on - set(TAGS)
  if unknown:
    raise DataError(f"not tags: {sorted(unknown)}")
  return np.array([t in on for t in TAGS], np.uint8)
