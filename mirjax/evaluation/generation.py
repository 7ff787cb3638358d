"""Measures of generated music, symbolic and audio.

Conditioning fidelity: the pitch classes a chromagram of the audio finds in each frame,
against those the conditioning piano roll holds; the frame-level F1 over (frame, pitch
class) cells. Symbolic statistics: pitch-class and melodic-interval histograms and note
density of generated notes against a corpus, compared by total variation distance.
"""
import numpy as np

SILENCE_DBFS = -50.0  # frames quieter than this (RMS) hold no pitch class
CHROMA_THRESHOLD = 0.5  # a pitch class is heard where its chroma is at least this share of the frame's largest


def roll_pitch_classes(roll: np.ndarray) -> np.ndarray:
  """(frames, 12) bool: the pitch classes a piano roll (frames, 128) holds in each frame."""
  roll = np.asarray(roll) > 0
  out = np.zeros((roll.shape[0], 12), bool)
  for pc in range(12):
    out[:, pc] = roll[:, pc::12].any(axis=1)
  return out


def heard_pitch_classes(audio: np.ndarray, sr: int, hop: int, frames: int) -> np.ndarray:
  """(frames, 12) bool: the pitch classes a chromagram (n_fft 2048, hop `hop`, each frame
  divided by its largest) finds in frame f, centred on sample (f + 1/2) hop: those at least
  `CHROMA_THRESHOLD`, in frames louder than `SILENCE_DBFS`."""
  from mirjax.audio import chroma_stft  # pylint: disable=import-outside-toplevel
  x = np.asarray(audio, np.float32)
  n = frames * hop
  x = np.pad(x, (0, max(0, n - x.size)))[:n]
  shifted = np.concatenate([x[hop // 2:], np.zeros(hop // 2, np.float32)])  # centred frames over [f hop, (f+1) hop)
  chroma = np.asarray(chroma_stft(shifted, sr=sr, n_fft=2048, hop_length=hop))[:frames]
  rms = np.sqrt(np.mean(x.reshape(frames, hop).astype(np.float64) ** 2, axis=1))
  loud = 20 * np.log10(rms + 1e-12) > SILENCE_DBFS
  return (chroma >= CHROMA_THRESHOLD) & loud[:, None]


def frame_f1(pred: np.ndarray, ref: np.ndarray) -> dict:
  """Precision, recall and F1 of predicted (frame, class) cells against reference ones
  (micro-averaged over every cell; an empty prediction and reference give F1 1)."""
  pred, ref = np.asarray(pred, bool).ravel(), np.asarray(ref, bool).ravel()
  tp = float(np.sum(pred & ref))
  p = tp / max(float(pred.sum()), 1.0) if pred.any() else float(not ref.any())
  r = tp / max(float(ref.sum()), 1.0) if ref.any() else float(not pred.any())
  f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
  return {"precision": p, "recall": r, "f1": f1}


def pitch_class_histogram(notes: np.ndarray, counts: bool = False) -> np.ndarray:
  """(12,) share (or, with counts, number) of notes of each pitch class."""
  h = np.bincount(np.asarray(notes).reshape(-1, 4)[:, 2].astype(int) % 12, minlength=12).astype(np.float64)
  return h if counts else h / max(h.sum(), 1.0)


INTERVALS = 12  # melodic intervals are clipped to +-12 semitones


def interval_histogram(notes: np.ndarray, counts: bool = False) -> np.ndarray:
  """(25,) share (or, with counts, number) of each interval, -12..12 semitones (clipped),
  between the highest pitches of successive onsets (the top line)."""
  notes = np.asarray(notes)
  if len(notes) == 0:
    return np.zeros(2 * INTERVALS + 1)
  onsets, inverse = np.unique(np.round(notes[:, 0], 6), return_inverse=True)
  top = np.full(len(onsets), -np.inf)
  np.maximum.at(top, inverse, notes[:, 2])
  steps = np.clip(np.diff(top), -INTERVALS, INTERVALS).astype(int) + INTERVALS
  h = np.bincount(steps, minlength=2 * INTERVALS + 1).astype(np.float64)
  return h if counts else h / max(h.sum(), 1.0)


def note_density(notes: np.ndarray) -> float:
  """Notes per second, from the first onset to the last note's end."""
  notes = np.asarray(notes)
  if len(notes) == 0:
    return 0.0
  span = float(notes[:, 1].max() - notes[:, 0].min())
  return len(notes) / span if span > 0 else 0.0


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
  """Half the L1 distance of two histograms: 0 (equal) to 1 (disjoint)."""
  return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def symbolic_statistics(pieces, reference) -> dict:
  """Statistics of `pieces` (notes arrays) against `reference` pieces: the total variation of
  their pooled pitch-class and interval histograms, and each side's mean note density."""
  def pooled(fn, ps):  # every piece's counts added, then normalised
    hs = np.array([fn(p, counts=True) for p in ps])
    return hs.sum(0) / max(hs.sum(), 1.0)
  return {"pitch_class_tv": total_variation(pooled(pitch_class_histogram, pieces), pooled(pitch_class_histogram, reference)),
          "interval_tv": total_variation(pooled(interval_histogram, pieces), pooled(interval_histogram, reference)),
          "note_density": float(np.mean([note_density(p) for p in pieces])),
          "reference_note_density": float(np.mean([note_density(p) for p in reference]))}
