"""Reading users' audio files on the host: decode (soundfile), downmix, resample (soxr).

Every failure to read a file raises `AudioReadError` naming the file, what is wrong
with it and what to do, so a dataset build can skip and count bad files instead of
crashing half-way.
"""
import os
import re
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

from mirjax.errors import DataError

# soxr "HQ" is librosa's default resampler (res_type="soxr_hq").
RESAMPLE_QUALITY = "HQ"


class AudioReadError(DataError):
  """An audio file could not be read. The message names the file, the cause and a fix."""


class AudioInfo(NamedTuple):
  """What a file's header says.

  Attributes:
    sample_rate: samples per second per channel, in Hz.
    frames: samples per channel.
    channels: number of channels.
    truncated: "" for a whole file; else what shows it was cut short (its header declares
      more audio than the file holds: a failed copy or download). `frames` is then what
      the file really holds.
  """
  sample_rate: int
  frames: int
  channels: int
  truncated: str = ""

  @property
  def seconds(self) -> float:
    """Duration in seconds."""
    return self.frames / self.sample_rate


def _check_file(path) -> str:
  """The path as str, after checking that it is a non-empty regular file."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise AudioReadError(f"audio file not found: {path!r}. Check the path (and, in a tags.csv, "
                         "that it is relative to the folder holding tags.csv).")
  if not os.path.isfile(path):
    raise AudioReadError(f"not a file: {path!r} is a directory or a special file; "
                         "point to an audio file instead.")
  if os.path.getsize(path) == 0:
    raise AudioReadError(f"empty audio file (0 bytes): {path!r}. The file was probably "
                         "truncated by a failed copy or download; replace it or remove it.")
  return path


def _undecodable(path: str, err: Exception) -> AudioReadError:
  return AudioReadError(
      f"not a decodable audio file: {path!r} ({err}). soundfile reads WAV, FLAC, OGG/Vorbis, "
      "MP3, AIFF and other libsndfile formats; convert the file to one of these (e.g. "
      "`ffmpeg -i in.m4a out.flac`) or remove it.")


def audio_info(path) -> AudioInfo:
  """Reads only the header of an audio file.

  Args:
    path: file path (str or os.PathLike).

  Returns:
    AudioInfo(sample_rate, frames, channels).

  Raises:
    AudioReadError: the file is missing, empty, not decodable or has no samples.
  """
  path = _check_file(path)
  try:
    info = sf.info(path)
  except (sf.SoundFileError, RuntimeError) as err:
    raise _undecodable(path, err) from err
  if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
    raise AudioReadError(f"audio file has no samples: {path!r} (header: {info.frames} frames, "
                         f"{info.samplerate} Hz, {info.channels} channels). Replace or remove it.")
  return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels),
                   truncation(info.extra_info))


def truncation(header_log: str) -> str:
  """What libsndfile's header log (`soundfile.info(path).extra_info`) says of a file cut
  short, or "": a WAV or AIFF whose data chunk declares more bytes than the file holds logs
  e.g. "data : 128000 (should be 63978)"."""
  for line in header_log.splitlines():
    m = re.match(r"\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", line)
    if m and int(m.group(3)) < int(m.group(2)):
      return (f"truncated: its header declares {int(m.group(2))} bytes of audio, the file holds "
              f"{int(m.group(3))}")
  return ""


def load_audio(path, sample_rate: int, mono: bool = True) -> np.ndarray:
  """Decodes an audio file to float32 samples at `sample_rate`.

  Args:
    path: file path (str or os.PathLike); any format soundfile reads (WAV, FLAC, OGG, MP3, ...).
    sample_rate: output rate in Hz (positive int). Files at another rate are resampled
      with soxr at quality "HQ" (librosa's default resampler).
    mono: True (default) averages the channels into one; False keeps them.

  Returns:
    float32 array in [-1, 1]: shape (samples,) if `mono`, else (channels, samples)
    (librosa's layout).

  Raises:
    ValueError: `sample_rate` is not a positive integer.
    AudioReadError: the file is missing, empty, not decodable or has no samples.
  """
  if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
    raise DataError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
  sample_rate = int(sample_rate)
  path = _check_file(path)
  try:
    audio, file_rate = sf.read(path, dtype="float32", always_2d=True)  # (frames, channels)
  except (sf.SoundFileError, RuntimeError) as err:
    raise _undecodable(path, err) from err
  if audio.size == 0:
    raise AudioReadError(f"audio file has no samples: {path!r} decodes to {audio.shape[0]} "
                         "frames. Replace or remove it.")
  if not np.all(np.isfinite(audio)):
    raise AudioReadError(f"audio file holds NaN or infinite samples: {path!r}. "
                         "Re-export it as integer PCM (e.g. 16-bit WAV or FLAC).")
  if mono:
    audio = audio.mean(axis=1, keepdims=True)
  if file_rate != sample_rate:
    audio = soxr.resample(audio, file_rate, sample_rate, quality=RESAMPLE_QUALITY)
  audio = np.ascontiguousarray(audio.T, dtype=np.float32)
  return audio[0] if mono else audio


def stream_windows(path, sample_rate: int, window: int, hop: int, block_seconds: float = 20.0):
  """Mono windows of a file of any length at `sample_rate`, read and resampled block by
  block, so memory stays bounded by a block and a window whatever the file's length.

  Windows start every `hop` samples; a tail the windows did not reach is scored by a last
  window that ends at the file's end (zero-padded when the file is shorter than a window).

  Args:
    path: an audio file soundfile reads (WAV, FLAC, OGG, MP3, ...).
    sample_rate: output rate in Hz; soxr "HQ" resampling as in `load_audio`.
    window, hop: window length and hop in output samples.
    block_seconds: seconds read from the file at a time.

  Yields:
    (start_sample, float32 array (window,), samples of the file in it): the last count is
    below `window` only for a file shorter than a window (the rest is zero padding).

  Raises:
    AudioReadError: the file is missing, empty, undecodable, or decodes to no samples (raised
      before the first window; a file corrupt in the middle raises where it breaks).
  """
  path = _check_file(path)
  try:
    f = sf.SoundFile(path)
  except (sf.SoundFileError, RuntimeError) as err:
    raise _undecodable(path, err) from err
  with f:
    resampler = None if f.samplerate == sample_rate else soxr.ResampleStream(
        f.samplerate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    block = max(1, int(block_seconds * f.samplerate))
    buf, offset, total, done = np.zeros(0, np.float32), 0, 0, False  # buf[0] is sample `offset`
    next_start = 0
    while not done:
      try:
        chunk = f.read(block, dtype="float32", always_2d=True)
      except (sf.SoundFileError, RuntimeError) as err:
        raise _undecodable(path, err) from err
      done = len(chunk) < block
      mono = chunk.mean(axis=1) if len(chunk) else np.zeros(0, np.float32)
      if resampler is not None:
        mono = resampler.resample_chunk(mono, last=done)
      if not np.all(np.isfinite(mono)):
        raise AudioReadError(f"audio file holds NaN or infinite samples: {path!r}.")
      buf = np.concatenate([buf, mono.astype(np.float32)])
      total += len(mono)
      while next_start + window <= offset + len(buf):
        i = next_start - offset
        yield next_start, buf[i:i + window].copy(), window
        next_start += hop
      # Drop what no later window needs, but keep the last `window` samples for the tail.
      keep = max(0, min(next_start, total - window) - offset)
      buf, offset = buf[keep:], offset + keep
    if total == 0:
      raise AudioReadError(f"audio file has no samples: {path!r}. Replace or remove it.")
    if next_start == 0 or next_start - hop + window < total:  # no window yet, or a tail left
      start = max(0, total - window)
      tail = buf[start - offset:]
      yield start, np.pad(tail, (0, window - len(tail))), len(tail)


def to_int16(audio: np.ndarray) -> np.ndarray:
  """float audio in [-1, 1] -> int16 PCM (x * 32768, rounded, clipped): how datasets store it."""
  return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def try_duration(path) -> float | str:
  """A file's duration in seconds from its header (nothing is decoded), or why it cannot be
  read: a module-level function, so dataset builders can map it over worker processes."""
  try:
    return audio_info(path).seconds
  except AudioReadError as err:
    return str(err)


def try_decode(job: tuple[str, int]) -> np.ndarray | str:
  """int16 mono audio of `path` at `sample_rate` (job = (path, sample_rate)), or why it
  cannot be read; for worker processes, like `try_duration`."""
  path, sample_rate = job
  try:
    return to_int16(load_audio(path, sample_rate))
  except AudioReadError as err:
    return str(err)
