"""Real multi-part compositions from the music21 corpus, parsed to note events.

A piece becomes a float64 array of shape (notes, 4): onset and duration in quarter
lengths (ql), MIDI pitch, part index. Only these events are kept: parsing is the slow
part of building the dataset, and the score objects are large.
"""
import functools
import pathlib

import numpy as np

from mirjax.errors import DataError

# (composer folder, file suffix, keep every k-th file): Bach chorales and other
# works, Monteverdi madrigals, trecento polyphony, a slice of Palestrina's masses.
POOL_SPEC = (("bach", ".mxl", 1), ("monteverdi", ".mxl", 1), ("trecento", ".xml", 1),
             ("palestrina", ".krn", 6))
MIN_PARTS, MAX_PARTS = 2, 15  # an ensemble needs 2 parts; 15 melodic GM channels
MIN_NOTES = 16


def corpus_dir() -> pathlib.Path:
  """Folder of music21's bundled corpus (found without importing music21)."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  return pathlib.Path(importlib.util.find_spec("music21").origin).parent / "corpus"


@functools.lru_cache(maxsize=1)
def piece_pool() -> tuple[str, ...]:
  """Candidate pieces as corpus-relative paths, sorted; a piece id indexes this tuple."""
  root = corpus_dir()
  pool = []
  for composer, suffix, every in POOL_SPEC:
    # "_old" files are earlier encodings of pieces that are also in the corpus.
    files = sorted(p for p in (root / composer).rglob("*" + suffix) if "_old" not in p.name)
    pool += [str(p.relative_to(root)) for p in files[::every]]
  return tuple(sorted(pool))


def choose(n_pool: int, n: int, seed: int) -> list[int]:
  """`n` distinct piece ids out of `n_pool`, drawn with `seed`, in ascending order."""
  rng = np.random.default_rng([seed, 0])
  return sorted(rng.choice(n_pool, size=min(n, n_pool), replace=False).tolist())


def parse(rel_path: str) -> np.ndarray:
  """Note events (notes, 4) = [onset_ql, duration_ql, midi_pitch, part] of a piece.

  Tied notes are merged into one event; grace notes (zero duration) and unpitched
  notes are dropped; parts without notes are dropped and the rest renumbered.
  Raises ValueError for a piece with fewer than `MIN_PARTS` sounding parts, more than
  `MAX_PARTS`, or fewer than `MIN_NOTES` notes.
  """
  from music21 import converter  # pylint: disable=import-outside-toplevel
  score = converter.parseFile(corpus_dir() / rel_path, forceSource=True, storePickle=False)
  rows, parts = [], 0
  for part in score.parts:
    events = _part_events(part)
    if events:
      rows += [(on, du, pitch, parts) for on, du, pitch in events]
      parts += 1
  if not MIN_PARTS <= parts <= MAX_PARTS or len(rows) < MIN_NOTES:
    raise DataError(f"{rel_path}: {parts} sounding parts, {len(rows)} notes")
  out = np.array(rows, np.float64)
  return out[np.lexsort((out[:, 2], out[:, 3], out[:, 0]))]


def _part_events(part) -> list[tuple[float, float, int]]:
  """(onset_ql, duration_ql, pitch) of one part, ties merged."""
  events, open_ties = [], {}
  for n in part.flatten().notes:
    onset, dur = float(n.offset), float(n.quarterLength)
    if dur <= 0:
      continue
    for sub in (n.notes if n.isChord else (n,)):
      if not hasattr(sub, "pitch"):
        continue
      pitch, tie = int(sub.pitch.midi), (sub.tie or n.tie)
      kind = tie.type if tie is not None else None
      if kind in ("stop", "continue") and pitch in open_ties:
        i = open_ties[pitch]
        events[i] = (events[i][0], onset + dur - events[i][0], pitch)
        if kind == "stop":
          del open_ties[pitch]
        continue
      events.append((onset, dur, pitch))
      if kind in ("start", "continue"):
        open_ties[pitch] = len(events) - 1
  return events


def parse_or_error(rel_path: str) -> np.ndarray | str:
  """`parse(rel_path)`, or the error's one-line description if it fails."""
  try:
    return parse(rel_path)
  except Exception as e:  # pylint: disable=broad-exception-caught
    # Corpus files fail in many ways (bad repeats, opus files, odd encodings): skip them.
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


SPLITS = ("train", "valid", "test")


def draw(num_pieces: int, seed: int, workers: int, desc: str):
  """The pieces a dataset of `num_pieces` drawn with `seed` holds, parsed, and their split.

  Returns (good, skipped, split): good is a list of (piece id, `parse` events) in id order;
  skipped maps the path of each piece that failed to parse to why; split maps "train",
  "valid" and "test" to sorted indices into `good` (about 80/10/10, by piece, from `seed`).
  The embedded audio and its symbolic notes (`mirjax.data.symbolic`) share this draw.
  """
  from mirjax.data import parallel  # pylint: disable=import-outside-toplevel
  pool = piece_pool()
  ids = choose(len(pool), num_pieces, seed)
  parsed = list(parallel.imap(parse_or_error, [pool[i] for i in ids], workers, desc))
  skipped = {pool[i]: r for i, r in zip(ids, parsed) if isinstance(r, str)}
  good = [(i, r) for i, r in zip(ids, parsed) if not isinstance(r, str)]
  return good, skipped, split_indices(len(good), seed)


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
  """Sorted indices of n pieces in "train", "valid" and "test": 10 % (at least one) each
  held out, by a permutation drawn with `seed`."""
  order = np.random.default_rng([seed, 1]).permutation(n)
  n_held = max(1, int(round(0.1 * n)))
  split = {"valid": order[:n_held], "test": order[n_held:2 * n_held], "train": order[2 * n_held:]}
  return {s: np.sort(split[s]) for s in SPLITS}
