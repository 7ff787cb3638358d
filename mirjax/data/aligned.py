"""Aligned (piano roll, audio) pairs for a conditioned WaveNet, made by mirjax's renderer.

The clips are the embedded dataset's own (`mirjax.data.embedded`: the same pieces, split by
piece, and rendering plan), those without drums (the roll has no drum pitches), rendered
again with the same synthesiser, so roll and audio align exactly: frame f of the roll is 1
for a pitch whose key is down anywhere in samples [f hop, (f + 1) hop) (`sample_roll`).
Examples are {"audio": int16 (clip_samples,), "roll": uint8 (clip_samples / hop, 128),
"piece": int32}; the train pipeline crops audio and roll together (`pipeline.crop_aligned`).
"""
import json
import os
import pathlib

import numpy as np

from mirjax.data import symbolic
from mirjax.errors import DataError

CACHE_VERSION = 1


def sample_roll(notes: np.ndarray, sr: int, hop: int, frames: int) -> np.ndarray:
  """(frames, 128) uint8 roll of notes as the synthesiser plays them (`render.synthesize`:
  key down at sample round(start sr), up at max(that + 1, round(end sr))): frame f is 1
  for a pitch whose key is down anywhere in samples [f hop, (f + 1) hop)."""
  notes = np.asarray(notes, np.float64).reshape(-1, 4)
  roll = np.zeros((frames + 1, symbolic.N_PITCHES), np.int32)
  on = np.round(notes[:, 0] * sr).astype(np.int64)
  off = np.maximum(on + 1, np.round(notes[:, 1] * sr).astype(np.int64))
  first, last = on // hop, -(-off // hop)  # frames [first, last) hold a sample of the note
  pitch = notes[:, 2].astype(np.int64)
  np.add.at(roll, (np.clip(first, 0, frames), pitch), 1)
  np.add.at(roll, (np.clip(last, 0, frames), pitch), -1)
  return (np.cumsum(roll, 0)[:frames] > 0).astype(np.uint8)


def clip_notes(notes: np.ndarray, clip, span_s: float) -> np.ndarray:
  """The notes (n, 4) = [start_s, end_s, pitch, velocity] a clip renders (`clips.render_clip`:
  its parts from its start, starting before `span_s`), velocity its base one."""
  sec = clip.seconds_per_ql
  rows = []
  for part in clip.parts:
    mine = notes[(notes[:, 3] == part) & (notes[:, 0] >= clip.start_ql)]
    onset = (mine[:, 0] - clip.start_ql) * sec
    keep = onset < span_s
    rows.append(np.stack([onset[keep], onset[keep] + mine[keep, 1] * sec, mine[keep, 2],
                          np.full(int(keep.sum()), float(clip.velocity))], 1))
  out = np.concatenate(rows) if rows else np.zeros((0, 4))
  return out[np.lexsort((out[:, 2], out[:, 0]))]


def _render_job(job):
  """(audio int16, notes) of each clip of one piece, or a one-line error (the piece is skipped)."""
  # pylint: disable=import-outside-toplevel
  from mirjax.data.embedded import clips
  notes, piece_clips, n_samples, sample_rate = job
  try:
    return [(clips.render_clip(notes, c, n_samples, sample_rate), clip_notes(notes, c, n_samples / sample_rate))
            for c in piece_clips]
  except Exception as e:  # pylint: disable=broad-exception-caught
    return f"{type(e).__name__}: {e}"[:200]


def build(data_dir: str, config_name: str = "default", hop: int = 128, workers: int | None = None) -> pathlib.Path:
  """The cache of the aligned clips of embedded config `config_name` with rolls at `hop`
  samples a frame (made on the first call): its path."""
  # pylint: disable=import-outside-toplevel
  from mirjax.data import parallel
  from mirjax.data.builders.embedded_music import EmbeddedMusic
  from mirjax.data.embedded import clips, corpus, render
  configs = {c.name: c for c in EmbeddedMusic.BUILDER_CONFIGS}
  if config_name not in configs:
    raise DataError(f"unknown embedded config {config_name!r}; choose one of {sorted(configs)}")
  cfg = configs[config_name]
  sr = render.SAMPLE_RATE
  if cfg.clip_samples % hop:
    raise DataError(f"hop {hop} does not divide the {cfg.clip_samples}-sample clips")
  # named by everything its bytes depend on, so a changed plan or renderer never reads an old cache
  import hashlib  # pylint: disable=import-outside-toplevel
  settings = [CACHE_VERSION, str(EmbeddedMusic.VERSION), cfg.num_pieces, cfg.clips_per_piece, cfg.clip_seconds,
              cfg.seed, sr, hop]
  key = hashlib.sha256(repr(settings).encode()).hexdigest()[:12]
  path = pathlib.Path(data_dir) / "mirjax_aligned" / f"{config_name}-hop{hop}-{key}.npz"
  if path.exists():
    return path
  workers = workers or parallel.default_workers()
  good, skipped, split = corpus.draw(cfg.num_pieces, cfg.seed, workers, f"aligned/{config_name}: parsing")
  audio, rolls, pieces, which = [], [], [], []
  for k, s in enumerate(corpus.SPLITS):
    pieces_s = [good[j] for j in split[s]]
    plan = [c for c in clips.plan(pieces_s, cfg.clips_per_piece, cfg.clip_seconds, cfg.seed, split=k)
            if c.drums == "none"]
    jobs = [(notes, [c for c in plan if c.piece == i], cfg.clip_samples, sr) for i, notes in pieces_s]
    jobs = [j for j in jobs if j[1]]
    for (_, piece_clips, _, _), result in zip(jobs, parallel.imap(_render_job, jobs, workers,
                                                                  f"aligned/{config_name}: rendering {s}")):
      if isinstance(result, str):
        skipped[corpus.piece_pool()[piece_clips[0].piece]] = result
        continue
      for c, (a, notes) in zip(piece_clips, result):
        audio.append(a)
        rolls.append(np.packbits(sample_roll(notes, sr, hop, cfg.clip_samples // hop), axis=1))
        pieces.append(c.piece)
        which.append(k)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # processes building at once never share a file
  np.savez(tmp, audio=np.stack(audio), rolls=np.stack(rolls), piece=np.asarray(pieces, np.int32),
           split=np.asarray(which, np.int32), sample_rate=np.int64(sr), hop=np.int64(hop),
           skipped=np.asarray(json.dumps(skipped)))
  tmp.replace(path)  # whole or not at all
  return path


class RollSource:
  """Examples of the aligned cache's clips in one split: audio, unpacked roll and piece."""

  def __init__(self, audio, rolls, piece):
    self.audio, self.rolls, self.piece = audio, rolls, piece

  def __len__(self):
    return len(self.audio)

  def __getitem__(self, i):
    return {"audio": self.audio[i], "roll": np.unpackbits(self.rolls[i], axis=1)[:, :symbolic.N_PITCHES],
            "piece": self.piece[i]}


def load(cfg, data_dir: str):
  """(sources, Info) of the aligned clips for the train job (cfg: the config's `data`:
  `config` "default" / "smoke", `hop`)."""
  from mirjax.data.info import Info  # pylint: disable=import-outside-toplevel
  path = build(data_dir, cfg.config, int(cfg.hop))
  with np.load(path) as z:
    arrays = {k: z[k] for k in z.files}
  sources = {s: RollSource(arrays["audio"][arrays["split"] == k], arrays["rolls"][arrays["split"] == k],
                           arrays["piece"][arrays["split"] == k])
             for k, s in enumerate(("train", "valid", "test"))}
  skipped = json.loads(str(arrays["skipped"]))
  info = Info(name=f"aligned/{cfg.config}", sample_rate=int(arrays["sample_rate"]),
              num_examples={s: len(v) for s, v in sources.items()}, clip_samples=int(arrays["audio"].shape[1]),
              skipped=len(skipped), skipped_files=skipped)
  return sources, info
