"""Rendering variants: which part of a piece a clip plays, on what, how fast and how loud.

Variants are planned per split from block-shuffled streams (every value of an
attribute appears once per block, in a random order), so even a split of 8 clips
holds each instrument, tempo and loudness class; the random draws come from one seed.
"""
import dataclasses

import numpy as np

from mirjax.data.embedded import render, tags

# Textures per block of 4 clips: one part alone, all parts on one instrument, all
# parts on instruments drawn one per part.
TEXTURES = ("solo", "homogeneous", "mixed", "mixed")
DRUM_BLOCK = ("none", "none", "backbeat", "cymbals")  # ensemble clips only


@dataclasses.dataclass(frozen=True)
class Clip:
  """One rendering of a segment of one piece.

  Attributes:
    piece: piece id (index into `corpus.piece_pool()`).
    index: clip number within the piece, 0-based.
    start_ql: segment start in quarter lengths (an onset of the piece).
    unit_ql: the piece's median note duration in quarter lengths.
    rate: rendered rate of `unit_ql` notes, per minute.
    parts: parts rendered (indices into the piece's parts).
    instruments: instrument name (key of `tags.INSTRUMENTS`) of each rendered part.
    drums: key of `tags.DRUMS`.
    tempo: key of `tags.TEMPI`.
    dynamics: key of `tags.DYNAMICS`.
    velocity: base MIDI velocity; each note adds a jitter of up to +-6.
    level_dbfs: RMS level of the clip in dB re full scale.
    seed: seed of the per-note velocity jitter.
  """
  piece: int
  index: int
  start_ql: float
  unit_ql: float
  rate: float
  parts: tuple[int, ...]
  instruments: tuple[str, ...]
  drums: str
  tempo: str
  dynamics: str
  velocity: int
  level_dbfs: float
  seed: int

  @property
  def solo(self) -> bool:
    """Exactly one part and no drums were rendered."""
    return len(self.parts) == 1 and self.drums == "none"

  @property
  def seconds_per_ql(self) -> float:
    return 60.0 / self.rate / self.unit_ql

  def tags(self) -> np.ndarray:
    """Multi-hot uint8 vector over `tags.TAGS`."""
    return tags.multi_hot(self.instruments, self.drums, self.tempo, self.dynamics, self.solo)


def _stream(values, rng: np.random.Generator):
  """Endless concatenation of random permutations of `values`."""
  while True:
    yield from (values[i] for i in rng.permutation(len(values)))


def plan(pieces: list[tuple[int, np.ndarray]], clips_per_piece: int, seconds: float,
         seed: int, split: int = 0) -> list[Clip]:
  """Clips for one split, `clips_per_piece` per piece, from `(piece_id, notes)` pairs.

  `notes` are `corpus.parse` events. Each clip starts at a random onset that leaves
  `seconds` of music when possible; a part is rendered only if it has a note onset in
  the segment, so the instrument tags name what sounds. `split` gives each split its
  own random stream under one `seed`.
  """
  rng = np.random.default_rng([seed, 2, split])
  textures, tempi = _stream(TEXTURES, rng), _stream(tuple(tags.TEMPI), rng)
  dynamics, drums = _stream(tuple(tags.DYNAMICS), rng), _stream(DRUM_BLOCK, rng)
  instruments = _stream(tuple(tags.INSTRUMENTS), rng)
  out = []
  for piece, notes in pieces:
    unit = float(np.median(notes[:, 1]))
    end = float(np.max(notes[:, 0] + notes[:, 1]))
    for index in range(clips_per_piece):
      texture, tempo, dyn = next(textures), next(tempi), next(dynamics)
      rate = float(rng.uniform(*tags.TEMPI[tempo]))
      span = seconds * rate / 60.0 * unit  # segment length, ql
      onsets = np.unique(notes[:, 0])
      fits = onsets[onsets <= end - span]
      start = float(rng.choice(fits if fits.size else onsets[:1]))
      inside = (notes[:, 0] >= start) & (notes[:, 0] < start + span)
      sounding = tuple(int(p) for p in np.unique(notes[inside, 3]))
      if texture == "solo":
        parts = (int(rng.choice(sounding)),)
        names = (next(instruments),)
      elif texture == "homogeneous":
        parts, names = sounding, (next(instruments),) * len(sounding)
      else:
        parts, names = sounding, tuple(next(instruments) for _ in sounding)
      (vlo, vhi), (dlo, dhi) = tags.DYNAMICS[dyn]
      out.append(Clip(
          piece=piece, index=index, start_ql=start, unit_ql=unit, rate=rate, parts=parts,
          instruments=names, drums="none" if texture == "solo" else next(drums), tempo=tempo,
          dynamics=dyn, velocity=int(rng.integers(vlo, vhi + 1)),
          level_dbfs=float(rng.uniform(dlo, dhi)), seed=int(rng.integers(2**31))))
  return out


def render_clip(notes: np.ndarray, clip: Clip, n_samples: int,
                sample_rate: int = render.SAMPLE_RATE) -> np.ndarray:
  """int16 audio (n_samples,) of `clip` played from the piece's `notes`."""
  rng = np.random.default_rng(clip.seed)
  span_s = n_samples / sample_rate
  sec = clip.seconds_per_ql
  rows, programs = [], {}
  for i, (part, name) in enumerate(zip(clip.parts, clip.instruments)):
    ch = render.channel_of(i)
    programs[ch] = tags.INSTRUMENTS[name]
    mine = notes[(notes[:, 3] == part) & (notes[:, 0] >= clip.start_ql)]
    onset = (mine[:, 0] - clip.start_ql) * sec
    keep = onset < span_s
    vel = np.clip(clip.velocity + rng.integers(-6, 7, size=int(keep.sum())), 1, 127)
    rows.append(np.stack([onset[keep], mine[keep, 1] * sec, mine[keep, 2],
                          np.full(vel.shape, ch), vel], axis=1))
  rows.append(render.drum_events(clip.drums, 60.0 / clip.rate, span_s, clip.velocity))
  audio = render.synthesize(np.concatenate(rows), programs, n_samples, sample_rate)
  return render.to_int16(render.level(audio, clip.level_dbfs))


def render_piece(job: tuple[np.ndarray, list[Clip], int]) -> list[np.ndarray] | str:
  """`render_clip` for each clip of one piece: job = (notes, clips, n_samples).

  Returns the int16 clips, or a one-line error if any clip fails (the piece is skipped).
  """
  notes, piece_clips, n_samples = job
  try:
    return [render_clip(notes, c, n_samples) for c in piece_clips]
  except Exception as e:  # pylint: disable=broad-exception-caught
    return f"{type(e).__name__}: {e}"[:200]  # e.g. a silent segment; counted, not fatal
