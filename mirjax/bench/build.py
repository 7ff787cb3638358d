"""Dataset build time: `python -m mirjax.bench.build [--clips=1000] [--workers=0] [--quick]`.

The wall time of a user's first run on MagnaTagATune: building the TFDS dataset from a
local folder in the real distribution's layout (`mirjax.data.builders.magnatagatune`), by
`mirjax.data.public.load_mtat`, the call `data.name = "mtat"` makes. What is timed is that
whole call into a fresh, empty data dir: reading annotations_final.csv and
clip_info_final.csv, hashing the folder, reading every MP3's header (the 'clean'
convention's length check), decoding every MP3 (libsndfile's mpg123) to int16 PCM at
16 kHz, writing the array_record files and opening them for reading. It is timed with
`--workers` build processes (0, the default of `data.build_workers`: one per core) and
with 1, and the ratio says what the process pool buys on this host. Decoding alone (the
same `audio_io.try_decode` calls, in one process, nothing written) is timed too and
printed as a share of the 1-worker build: the part of the build that is MP3 decoding.

The folder is synthetic but has MagnaTagATune's shape: `--clips` mono MP3s of 29.13 s at
16 kHz (the distribution's rate; libsndfile's default MP3 quality gives ~31 kbit/s, the
distribution has 32) spread over the folders 0..f (so train, valid and test all get
clips), a melody of harmonic notes over a bass tone and noise in each, and an
annotations_final.csv with 60 tag columns of decreasing frequency, so the builder's top-50
cut drops some. Writing it is not timed: it is cached in `--folder` (default: under the
system temp dir) and reused while it holds the same clips. Before timing, every MP3 is read
once (so both builds find the files in the OS's page cache) and a tiny folder is built
once, untimed (so one-time costs of the process, such as starting the pool's fork server
and lazy imports, fall on neither build).
"""
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
from absl import app, flags, logging

from mirjax.data import audio_io, parallel, public
from mirjax.data.builders import magnatagatune


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("clips", 1000, "MP3 clips in the folder.")
  flags.DEFINE_integer("workers", 0, "Build processes of the parallel build (0: one per core, the default).")
  flags.DEFINE_string("folder", "", "Where the MagnaTagATune-shaped folder is written and reused "
                      "(default: mirjax-bench-mtat-CLIPS under the system temp dir).")
  flags.DEFINE_bool("quick", False, "8 clips: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS

SAMPLE_RATE = 16000  # MagnaTagATune's MP3s are 16 kHz mono
CLIP_SECONDS = 29.13  # a whole MagnaTagATune clip: at least the 29.1 s 'clean' keeps
N_TAGS = 60  # more tag columns than the top 50 kept
FOLDERS = "0123456789abcdef"
MARKER = "mirjax-bench.json"  # written last: a folder without it is not (wholly) the bench's
QUICK_CLIPS = 8
WARMUP_CLIPS = 8  # enough for the build's process pool to start (parallel.imap)


def clip_signal(n: int, seconds: float = CLIP_SECONDS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
  """Clip `n`'s audio, float32 in [-0.8, 0.8]: a melody of decaying harmonic notes on a
  major scale, a bass tone an octave below its root, and a little noise."""
  rng = np.random.default_rng(n)
  length = int(round(seconds * sample_rate))
  t = np.arange(length) / sample_rate
  beat = rng.uniform(0.25, 0.6)  # seconds a note
  n_notes = int(np.ceil(length / sample_rate / beat))
  root = rng.uniform(110.0, 220.0)
  steps = rng.choice([0, 2, 4, 5, 7, 9, 11], n_notes) + 12 * rng.integers(0, 2, n_notes)
  note = np.minimum((t / beat).astype(np.int64), n_notes - 1)
  phase = 2 * np.pi * np.cumsum(root * 2.0 ** (steps[note] / 12)) / sample_rate
  melody = np.exp(-3.0 * (t - note * beat) / beat) * sum(np.sin(k * phase) / k for k in range(1, 5))
  y = melody + 0.3 * np.sin(np.pi * root * t) + 0.05 * rng.standard_normal(length)
  return (0.8 * y / np.abs(y).max()).astype(np.float32)


def mp3_path(n: int, clips: int) -> str:
  """Clip `n`'s path relative to the folder, named as the distribution names its files
  (artist-album-track-title-start-end.mp3); clips spread evenly over the folders 0..f."""
  return (f"{FOLDERS[n * len(FOLDERS) // clips]}/bench_artist_{n // 10:05d}-bench_album-"
          f"{n % 10 + 1:02d}-clip_{n:05d}-0-29.mp3")


def tag_matrix(clips: int, seed: int = 0) -> np.ndarray:
  """(clips, N_TAGS) 0/1: tag j on a clip with probability 0.4 / (1 + j / 4), and one of the
  10 most frequent tags on every clip (all in the top 50, so 'clean' keeps every clip)."""
  rng = np.random.default_rng(seed)
  tags = rng.random((clips, N_TAGS)) < 0.4 / (1 + np.arange(N_TAGS) / 4)
  bare = ~tags[:, :10].any(axis=1)
  tags[bare, rng.integers(0, 10, bare.sum())] = True
  return tags.astype(np.int64)


def write_clip(job: tuple[str, int, float]) -> None:
  """Writes clip `n` to `path` as an MP3 (job = (path, n, seconds)); for worker processes."""
  path, n, seconds = job
  sf.write(path, clip_signal(n, seconds), SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III")


def _write_tsv(path: str, header: list[str], rows: list[list]) -> None:
  """A tab-separated file with every field double-quoted, as the distribution's csv files."""
  quote = lambda v: '"' + str(v) + '"'
  with open(path, "w", encoding="utf-8") as f:
    for row in [header, *rows]:
      f.write("\t".join(map(quote, row)) + "\n")


def write_folder(folder: str, clips: int, seconds: float = CLIP_SECONDS) -> None:
  """A MagnaTagATune-shaped folder of `clips` MP3s (see the module docstring); the marker
  file, naming what it holds, is written last."""
  paths = [mp3_path(n, clips) for n in range(clips)]
  for sub in sorted({p.split("/")[0] for p in paths}):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
  jobs = [(os.path.join(folder, p), n, seconds) for n, p in enumerate(paths)]
  for _ in parallel.imap(write_clip, jobs, 0, f"writing {clips} MP3s", unit="clip"):
    pass
  write_tables(folder, clips, seconds)


def write_tables(folder: str, clips: int, seconds: float = CLIP_SECONDS) -> None:
  """The folder's annotations_final.csv and clip_info_final.csv, then its marker file."""
  paths = [mp3_path(n, clips) for n in range(clips)]
  tags = tag_matrix(clips)
  names = [f"tag_{j:02d}" for j in range(N_TAGS)]
  _write_tsv(os.path.join(folder, magnatagatune.ANNOTATIONS), ["clip_id", *names, "mp3_path"],
             [[2 * n + 1, *tags[n], p] for n, p in enumerate(paths)])
  _write_tsv(os.path.join(folder, magnatagatune.CLIP_INFO),
             ["clip_id", "track_number", "title", "artist", "album", "url", "segmentStart",
              "segmentEnd", "original_url", "mp3_path"],
             [[2 * n + 1, n % 10 + 1, f"clip {n}", f"bench artist {n // 10}", "bench album", "", 0, 29, "", p]
              for n, p in enumerate(paths)])
  with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as f:
    json.dump(_what(clips, seconds), f)


def _what(clips: int, seconds: float) -> dict:
  return {"clips": clips, "seconds": seconds, "sample_rate": SAMPLE_RATE, "tags": N_TAGS, "layout": 2}


def _marker(folder: str) -> dict:
  """What `folder`'s marker says it holds ({} where it has none or cannot be read)."""
  try:
    with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def holds(folder: str, clips: int, seconds: float = CLIP_SECONDS) -> bool:
  """Whether `folder` is a finished bench folder of these clips, every MP3 in place."""
  return _marker(folder) == _what(clips, seconds) and _mp3s_in_place(folder, clips)


def _same_mp3s(folder: str, clips: int, seconds: float) -> bool:
  """Whether `folder`'s marker names these clips (whatever its layout) and they are in place."""
  had, want = _marker(folder), _what(clips, seconds)
  return (all(had.get(k) == want[k] for k in ("clips", "seconds", "sample_rate"))
          and _mp3s_in_place(folder, clips))


def _mp3s_in_place(folder: str, clips: int) -> bool:
  """Whether every MP3 of `clips` is in `folder`, written by this bench (it has a marker)."""
  if not os.path.isfile(os.path.join(folder, MARKER)):
    return False
  files = (os.path.join(folder, mp3_path(n, clips)) for n in range(clips))
  return all(os.path.isfile(f) and os.path.getsize(f) > 0 for f in files)


def ensure_folder(folder: str, clips: int, seconds: float = CLIP_SECONDS) -> bool:
  """Makes `folder` hold the bench's clips, reusing it when it does already; True if reused.

  Raises:
    ValueError: `folder` holds files the bench did not write (a real MagnaTagATune, say),
      which it will not overwrite.
  """
  if holds(folder, clips, seconds):
    return True
  if _same_mp3s(folder, clips, seconds):  # an older layout of the same MP3s: only the tables change
    write_tables(folder, clips, seconds)
    return True
  if os.path.isdir(folder) and os.listdir(folder):
    if not os.path.isfile(os.path.join(folder, MARKER)):
      raise ValueError(f"{folder!r} holds files this benchmark did not write; it overwrites only "
                       f"its own folders (with a {MARKER}). Pass an empty or new --folder.")
    shutil.rmtree(folder)  # the bench's own, of other clips or left unfinished
  os.makedirs(folder, exist_ok=True)
  write_folder(folder, clips, seconds)
  return False


def read_all(folder: str, rel_paths) -> int:
  """Reads every file once (into the OS's page cache); returns the bytes read."""
  total = 0
  for rel in rel_paths:
    with open(os.path.join(folder, rel), "rb") as f:
      total += len(f.read())
  return total


def timed_build(folder: str, workers: int) -> tuple[float, int]:
  """(seconds, examples stored) of `load_mtat(folder)` into a fresh data dir, with
  `workers` build processes (0: one per core), as `data.build_workers` sets them."""
  data_dir = tempfile.mkdtemp(prefix="mirjax-bench-build-")
  try:
    with parallel.using(workers), contextlib.redirect_stdout(sys.stderr):  # TFDS's notes: not figures
      start = time.perf_counter()
      _, info = public.load_mtat(folder, data_dir, convention="clean", sample_rate=SAMPLE_RATE)
      seconds = time.perf_counter() - start
  finally:
    shutil.rmtree(data_dir, ignore_errors=True)
  return seconds, sum(info.num_examples.values())


def timed_decode(folder: str, rel_paths) -> float:
  """Seconds to decode every MP3 as the build does (`audio_io.try_decode`), in this process."""
  start = time.perf_counter()
  for rel in rel_paths:
    audio = audio_io.try_decode((os.path.join(folder, rel), SAMPLE_RATE))
    if isinstance(audio, str):
      raise RuntimeError(audio)
  return time.perf_counter() - start


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  clips = QUICK_CLIPS if FLAGS.quick else FLAGS.clips
  if clips < 1 or FLAGS.workers < 0:
    raise app.UsageError("--clips must be positive and --workers 0 (one per core) or more")
  folder = FLAGS.folder or os.path.join(tempfile.gettempdir(), f"mirjax-bench-mtat-{clips}")
  cores = parallel.cores()
  workers = FLAGS.workers or cores
  print(f"mirjax.bench.build: {cores} core(s), python {sys.version.split()[0]}, soundfile "
        f"{sf.__version__} (libsndfile {sf.__libsndfile_version__})")
  try:
    reused = ensure_folder(folder, clips)
  except ValueError as err:
    raise SystemExit(f"mirjax.bench.build: {err}") from err
  ensure_folder(os.path.join(folder, "warmup"), WARMUP_CLIPS)  # not listed: the build never reads it
  paths = [mp3_path(n, clips) for n in range(clips)]
  hours = sum(audio_io.audio_info(os.path.join(folder, p)).seconds for p in paths) / 3600
  megabytes = read_all(folder, paths) / 2 ** 20
  print(f"MagnaTagATune layout in {folder} ({'reused' if reused else 'written'}): {clips} mono MP3s "
        f"of {CLIP_SECONDS} s at {SAMPLE_RATE} Hz, {megabytes:.1f} MiB, {N_TAGS} tag columns")
  timed_build(os.path.join(folder, "warmup"), FLAGS.workers)
  print(f"building it (load_mtat, 'clean', {SAMPLE_RATE} Hz) into a fresh data dir each time: "
        f"clips {clips}, audio {hours:.4f} h")
  label = f"{workers} worker(s) ({'--workers' if FLAGS.workers else 'default: one per core'})"
  seconds = []
  for n, text in ((FLAGS.workers, label), (1, "1 worker")):
    elapsed, stored = timed_build(folder, n)
    if stored != clips:
      raise RuntimeError(f"the build stored {stored} of {clips} clips; it skipped some")
    print(f"  {text + ':':36s} {elapsed:9.2f} s  {clips / elapsed:9.2f} clips/s")
    seconds.append(elapsed)
  print(f"  ratio 1 worker / {workers} worker(s): {seconds[1] / seconds[0]:.2f}x")
  decode = timed_decode(folder, paths)
  print(f"  decoding alone (1 process, nothing written): {decode:.2f} s = "
        f"{100 * decode / seconds[1]:.1f}% of the 1-worker build")


if __name__ == "__main__":
  define_flags()
  app.run(main)
