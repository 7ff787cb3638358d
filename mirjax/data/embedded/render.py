"""Note events -> mono audio with tinysoundfont and the General MIDI font pretty_midi ships.

Synthesis runs on the host in float32 at `SAMPLE_RATE`; a clip is then set to an RMS
level (its dynamics) and scaled down if its peak would pass `PEAK`, then stored as int16.
"""
import functools
import importlib.util
import pathlib

import numpy as np

from mirjax.errors import DataError

SAMPLE_RATE = 16_000  # Hz
DRUM_CHANNEL = 9      # GM channel 10, 0-based
PEAK = 0.98           # largest |sample| after levelling, in full scale
# GM percussion keys: kick, snare, closed / pedal hi-hat, ride.
KICK, SNARE, HAT, PEDAL_HAT, RIDE = 36, 38, 42, 44, 51


def soundfont_path() -> pathlib.Path:
  """TimGM6mb.sf2, bundled next to pretty_midi's __init__.py (found without importing it)."""
  return pathlib.Path(importlib.util.find_spec("pretty_midi").origin).parent / "TimGM6mb.sf2"


@functools.lru_cache(maxsize=1)
def _soundfont_bytes() -> bytes:
  return soundfont_path().read_bytes()  # 6 MB, read once per process


def channel_of(i: int) -> int:
  """MIDI channel of the i-th rendered part: 0..15, skipping the drum channel."""
  return i if i < DRUM_CHANNEL else i + 1


def synthesize(events: np.ndarray, programs: dict[int, int], n_samples: int,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
  """Render note events to mono float32 audio of exactly `n_samples`.

  Args:
    events: (n, 5) rows [onset_s, duration_s, midi_pitch, channel, velocity]; notes on
      `DRUM_CHANNEL` play GM percussion (bank 128).
    programs: channel -> GM program (0-based) for every melodic channel used.
    n_samples: output length; notes still sounding at the end are cut.
    sample_rate: Hz, default 16 kHz.
  """
  import tinysoundfont  # pylint: disable=import-outside-toplevel
  synth = tinysoundfont.Synth(samplerate=sample_rate)  # fresh synth: no state leaks between clips
  sfid = synth.sfload(_soundfont_bytes())
  for ch, program in programs.items():
    synth.program_select(ch, sfid, 0, int(program))
  synth.program_select(DRUM_CHANNEL, sfid, 128, 0, is_drums=True)
  # (sample, kind, channel, pitch, velocity); kind 0 = off sorts before 1 = on at one instant.
  timeline = []
  for onset, dur, pitch, ch, vel in events:
    start = int(round(onset * sample_rate))
    if start >= n_samples:
      continue
    timeline.append((start, 1, int(ch), int(pitch), int(vel)))
    timeline.append((max(start + 1, int(round((onset + dur) * sample_rate))), 0, int(ch), int(pitch), 0))
  timeline.sort()
  chunks, cursor = [], 0
  for t, kind, ch, pitch, vel in timeline:
    if t >= n_samples:
      break
    if t > cursor:
      chunks.append(np.frombuffer(synth.generate(t - cursor), np.float32).copy())
      cursor = t
    if kind:
      synth.noteon(ch, pitch, vel)
    else:
      synth.noteoff(ch, pitch)
  if n_samples > cursor:
    chunks.append(np.frombuffer(synth.generate(n_samples - cursor), np.float32).copy())
  stereo = np.concatenate(chunks).reshape(n_samples, 2)  # generate() gives interleaved L, R
  return stereo.mean(axis=1)


def drum_events(pattern: str, beat_s: float, duration_s: float, velocity: int) -> np.ndarray:
  """(n, 5) events of a drum pattern on `DRUM_CHANNEL`, one beat every `beat_s` seconds.

  "backbeat": kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every half beat.
  "cymbals": ride on every beat, pedal hi-hat on the off-beats (no kick, no snare).
  "none": no events.
  """
  rows = []
  for k in range(int(np.ceil(duration_s / beat_s)) + 1):
    t = k * beat_s
    if pattern == "backbeat":
      rows += [(t, 0.1, KICK if k % 2 == 0 else SNARE, velocity),
               (t, 0.05, HAT, velocity - 20), (t + beat_s / 2, 0.05, HAT, velocity - 30)]
    elif pattern == "cymbals":
      rows += [(t, 0.2, RIDE, velocity - 10), (t + beat_s / 2, 0.05, PEDAL_HAT, velocity - 25)]
    elif pattern != "none":
      raise DataError(f"unknown drum pattern {pattern!r}")
  out = np.array([(t, d, p, DRUM_CHANNEL, max(1, v)) for t, d, p, v in rows if t < duration_s],
                 np.float64)
  return out.reshape(-1, 5)


def level(audio: np.ndarray, rms_dbfs: float) -> np.ndarray:
  """Scale to an RMS of `rms_dbfs` dB re full scale, then down so |peak| <= `PEAK`.

  Raises ValueError on silent input (RMS below -100 dBFS): there is nothing to level.
  """
  rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
  if rms < 1e-5:
    raise DataError("silent rendering")
  out = audio * (10 ** (rms_dbfs / 20) / rms)
  peak = float(np.max(np.abs(out)))
  return (out * min(1.0, PEAK / peak)).astype(np.float32)


def to_int16(audio: np.ndarray) -> np.ndarray:
  """Float audio in [-1, 1] -> int16, rounding to nearest."""
  return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
