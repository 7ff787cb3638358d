"""Symbolic music: notes, Performance RNN event tokens, piano rolls and MIDI files.

A piece is a float64 array of notes (n, 4) = [start_s, end_s, midi_pitch, velocity],
sorted by start then pitch. It becomes

  * event tokens, the vocabulary of "This Time with Feeling: Learning Expressive Musical
    Performance" (Oore et al., arXiv:1808.03715): 128 note-on and 128 note-off events,
    100 time shifts of 10 ms to 1 s and 32 velocity bins, plus BOS, EOS and PAD;
  * a piano roll, (frames, 128) with 1 where a pitch sounds, frame f covering
    [f / fs, (f + 1) / fs), the frames `pretty_midi`'s `get_piano_roll` marks.

Pieces come from the music21 corpus (the pieces, and the split by piece, of the embedded
audio dataset, `mirjax.data.embedded`) or from a folder of MIDI files (`read_folder`);
files that fail to parse are skipped and counted, never fatal.
"""
import os
import pathlib

import numpy as np

from mirjax.errors import DataError

N_PITCHES = 128
SHIFT_STEPS = 100  # time shifts of 1..100 steps
STEPS_PER_SECOND = 100  # a step is 10 ms
VELOCITY_BINS = 32
NOTE_ON, NOTE_OFF = 0, N_PITCHES
TIME_SHIFT = 2 * N_PITCHES
VELOCITY = TIME_SHIFT + SHIFT_STEPS
BOS = VELOCITY + VELOCITY_BINS  # start of a piece
EOS = BOS + 1  # end of a piece
PAD = BOS + 2  # fills a window after EOS; never predicted
VOCAB = PAD + 1  # 391
DEFAULT_VELOCITY = 80  # of a note whose source has none (the music21 corpus)
MIN_NOTES = 16
MIDI_SUFFIXES = (".mid", ".midi")


def velocity_bin(velocity) -> np.ndarray:
  """Bin 0..31 of MIDI velocities 1..127 (4 velocities a bin; 0 counts as 1)."""
  return (np.clip(np.asarray(velocity, np.int64), 1, 127) - 1) // 4


def bin_velocity(b) -> np.ndarray:
  """The velocity a bin decodes to: the middle of its four, 4 b + 2 (at most 127)."""
  return np.minimum(4 * np.asarray(b, np.int64) + 2, 127)


def quantize(notes: np.ndarray) -> np.ndarray:
  """The notes as tokens keep them: times on the 10 ms grid, every note at least one step
  long, velocities at their bin's middle, and a note cut where the same pitch starts again."""
  notes = _check(notes)
  on = np.round(notes[:, 0] * STEPS_PER_SECOND).astype(np.int64)
  off = np.maximum(np.round(notes[:, 1] * STEPS_PER_SECOND).astype(np.int64), on + 1)
  pitch, vel = notes[:, 2].astype(np.int64), bin_velocity(velocity_bin(notes[:, 3]))
  order = np.lexsort((pitch, on))
  on, off, pitch, vel = on[order], off[order], pitch[order], vel[order]
  keep = np.ones(on.size, bool)
  for p in np.unique(pitch):  # a pitch sounds once at a time: the next start ends it
    idx = np.flatnonzero(pitch == p)
    same_start = np.diff(on[idx]) == 0
    keep[idx[1:][same_start]] = False  # a second note of one pitch at one instant is dropped
    idx = idx[keep[idx]]
    off[idx[:-1]] = np.minimum(off[idx[:-1]], on[idx[1:]])
  out = np.stack([on, off, pitch, vel], 1)[keep].astype(np.float64)
  out[:, :2] /= STEPS_PER_SECOND
  return out


def encode(notes: np.ndarray) -> np.ndarray:
  """Event tokens (int32) of a piece's notes, without BOS / EOS.

  Events are ordered by time, note-offs before note-ons at one instant, then by pitch; a
  velocity token comes before a note-on whose velocity bin differs from the last one."""
  q = quantize(notes)
  on = np.round(q[:, 0] * STEPS_PER_SECOND).astype(np.int64)
  off = np.round(q[:, 1] * STEPS_PER_SECOND).astype(np.int64)
  pitch, vbin = q[:, 2].astype(np.int64), velocity_bin(q[:, 3])
  # (time, 0 = off / 1 = on, pitch, velocity bin)
  events = np.concatenate([np.stack([off, np.zeros_like(off), pitch, vbin], 1),
                           np.stack([on, np.ones_like(on), pitch, vbin], 1)])
  events = events[np.lexsort((events[:, 2], events[:, 1], events[:, 0]))]
  out, now, current_bin = [], 0, -1
  for t, is_on, p, b in events.tolist():
    while t > now:
      step = min(t - now, SHIFT_STEPS)
      out.append(TIME_SHIFT + step - 1)
      now += step
    if is_on:
      if b != current_bin:
        out.append(VELOCITY + b)
        current_bin = b
      out.append(NOTE_ON + p)
    else:
      out.append(NOTE_OFF + p)
  return np.asarray(out, np.int32)


def decode(tokens) -> np.ndarray:
  """Notes (n, 4) of event tokens: the inverse of `encode` on `quantize`d notes.

  Whatever a model samples decodes: a note-on of a sounding pitch ends it first, a note-off
  of a silent pitch and BOS / PAD are ignored, EOS ends the piece, and notes still sounding
  at the end stop at the last time (one step later if that is their start)."""
  now, vel, active, notes = 0, DEFAULT_VELOCITY, {}, []
  for tok in np.asarray(tokens, np.int64).tolist():
    if tok == EOS:
      break
    if NOTE_ON <= tok < NOTE_OFF or NOTE_OFF <= tok < TIME_SHIFT:
      p = tok % N_PITCHES
      if p in active:
        start, v = active.pop(p)
        if now > start:
          notes.append((start, now, p, v))
      if tok < NOTE_OFF:
        active[p] = (now, vel)
    elif TIME_SHIFT <= tok < VELOCITY:
      now += tok - TIME_SHIFT + 1
    elif VELOCITY <= tok < BOS:
      vel = int(bin_velocity(tok - VELOCITY))
  for p, (start, v) in active.items():
    notes.append((start, max(now, start + 1), p, v))
  out = np.asarray(notes, np.float64).reshape(-1, 4)
  out[:, :2] /= STEPS_PER_SECOND
  return out[np.lexsort((out[:, 2], out[:, 0]))]


def piano_roll(notes: np.ndarray, fs: float = 100.0, frames: int | None = None) -> np.ndarray:
  """(frames, 128) uint8: 1 where a pitch sounds; a note covers frames int(start fs) up to
  (not including) int(end fs), as `pretty_midi`'s roll. frames: default up to the last end."""
  notes = _check(notes)
  start = (notes[:, 0] * fs).astype(np.int64)
  end = (notes[:, 1] * fs).astype(np.int64)
  n = int(end.max(initial=0)) if frames is None else int(frames)
  roll = np.zeros((n + 1, N_PITCHES), np.int32)  # +1 / -1 at each note's ends, then a running sum
  pitch = notes[:, 2].astype(np.int64)
  np.add.at(roll, (np.clip(start, 0, n), pitch), 1)
  np.add.at(roll, (np.clip(end, 0, n), pitch), -1)
  return (np.cumsum(roll, 0)[:n] > 0).astype(np.uint8)


def from_corpus(events: np.ndarray, qpm: float = 120.0, velocity: int = DEFAULT_VELOCITY) -> np.ndarray:
  """Notes of `mirjax.data.embedded.corpus.parse` events (onset_ql, duration_ql, pitch,
  part), every part together, at `qpm` quarter notes a minute, at one velocity."""
  sec = 60.0 / qpm
  notes = np.stack([events[:, 0] * sec, (events[:, 0] + events[:, 1]) * sec, events[:, 2],
                    np.full(len(events), float(velocity))], 1)
  return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def write_midi(notes: np.ndarray, path, program: int = 0) -> None:
  """A one-track MIDI file of the notes (GM `program`, 0 = acoustic grand piano)."""
  import pretty_midi  # pylint: disable=import-outside-toplevel
  pm = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(program=int(program))
  for start, end, pitch, vel in _check(notes).tolist():
    inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=start, end=end))
  pm.instruments.append(inst)
  pm.write(str(path))


def read_midi(path) -> np.ndarray:
  """Notes of a MIDI file, every non-drum track together, tempo changes applied.

  Raises DataError when the file cannot be read or holds fewer than `MIN_NOTES` notes."""
  import pretty_midi  # pylint: disable=import-outside-toplevel
  try:
    pm = pretty_midi.PrettyMIDI(str(path))
  except Exception as e:  # pylint: disable=broad-exception-caught
    # mido and pretty_midi raise many kinds of error on a corrupt file
    raise DataError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})"[:300]) from e
  rows = [(n.start, n.end, n.pitch, n.velocity) for inst in pm.instruments if not inst.is_drum
          for n in inst.notes if n.end > n.start]
  if len(rows) < MIN_NOTES:
    raise DataError(f"{path}: {len(rows)} notes (at least {MIN_NOTES} needed)")
  notes = np.asarray(rows, np.float64)
  return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def read_folder(folder) -> tuple[list[tuple[str, np.ndarray]], dict[str, str]]:
  """(pieces, skipped) of every .mid / .midi file under `folder`, in path order: pieces
  are (relative path, notes); skipped maps each file that failed to why."""
  root = pathlib.Path(folder)
  if not root.is_dir():
    raise DataError(f"MIDI folder {root} does not exist: pass a folder of .mid / .midi files")
  files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
  if not files:
    raise DataError(f"no .mid or .midi files under {root}")
  pieces, skipped = [], {}
  for f in files:
    rel = str(f.relative_to(root))
    try:
      pieces.append((rel, read_midi(f)))
    except DataError as e:
      skipped[rel] = str(e)
  return pieces, skipped


def windows(tokens: np.ndarray, length: int) -> np.ndarray:
  """A piece's tokens as model inputs: BOS + tokens + EOS cut into rows of length + 1
  (int32), one after another with `length` tokens of hop, so every token after BOS is a
  target exactly once; the last row is filled with PAD."""
  seq = np.concatenate([[BOS], np.asarray(tokens, np.int32), [EOS]]).astype(np.int32)
  n = max(1, -(-(seq.size - 1) // length))
  padded = np.full(n * length + 1, PAD, np.int32)
  padded[:seq.size] = seq
  idx = np.arange(n)[:, None] * length + np.arange(length + 1)[None, :]
  return padded[idx]


def _check(notes) -> np.ndarray:
  notes = np.asarray(notes, np.float64).reshape(-1, 4) if np.size(notes) else np.zeros((0, 4))
  if notes.size and (notes[:, 2].min() < 0 or notes[:, 2].max() >= N_PITCHES or notes[:, 0].min() < 0):
    raise DataError("notes need pitches 0..127 and start times >= 0")
  return notes


# ---------------------------------------------------------------------------------------
# Datasets: pieces cached once as tokens, then cut into windows for the train job.

CACHE_VERSION = 1


def corpus_pieces(config_name: str = "default", workers: int | None = None):
  """(pieces, styles, split, skipped) of the embedded dataset's pieces (`mirjax.data.embedded`,
  config "default" or "smoke"): pieces are (corpus path, notes at 120 quarter notes a
  minute), styles the composer of each (an index into `embedded.LABELS["composer"]`),
  split maps each split to indices into pieces, skipped the pieces that failed to parse."""
  # pylint: disable=import-outside-toplevel
  from mirjax.data import parallel
  from mirjax.data.builders.embedded_music import EmbeddedMusic
  from mirjax.data.embedded import LABELS, corpus
  configs = {c.name: c for c in EmbeddedMusic.BUILDER_CONFIGS}
  if config_name not in configs:
    raise DataError(f"unknown notes config {config_name!r}; choose one of {sorted(configs)}")
  cfg = configs[config_name]
  good, skipped, split = corpus.draw(cfg.num_pieces, cfg.seed, workers or parallel.default_workers(),
                                     f"notes/{config_name}: parsing")
  pool = corpus.piece_pool()
  pieces = [(pool[i], from_corpus(events)) for i, events in good]
  styles = [LABELS["composer"].index(path.split("/")[0]) for path, _ in pieces]
  return pieces, styles, split, skipped


def folder_pieces(folder):
  """(pieces, styles, split, skipped, style names) of a MIDI folder (`read_folder`): a piece's style is
  its first sub-folder (sorted; one style when every file is at the top), the split by piece
  is drawn with seed 0 as the embedded dataset's."""
  from mirjax.data.embedded import corpus  # pylint: disable=import-outside-toplevel
  pieces, skipped = read_folder(folder)
  if len(pieces) < 3:
    raise DataError(f"{folder}: {len(pieces)} readable MIDI files; train, valid and test need at least 3"
                    + "".join(f"\n  {p}: {why}" for p, why in sorted(skipped.items())))
  names = [pathlib.PurePath(p).parts[0] if len(pathlib.PurePath(p).parts) > 1 else "" for p, _ in pieces]
  style_names = sorted(set(names))
  return pieces, [style_names.index(n) for n in names], corpus.split_indices(len(pieces), 0), skipped, style_names


def _cache_path(data_dir: str, key: str) -> pathlib.Path:
  return pathlib.Path(data_dir) / "mirjax_notes" / f"{key}-v{CACHE_VERSION}.npz"


def _token_settings() -> list:
  return [CACHE_VERSION, SHIFT_STEPS, STEPS_PER_SECOND, VELOCITY_BINS, DEFAULT_VELOCITY, MIN_NOTES, VOCAB]


def _corpus_key(config_name: str) -> str:
  """A digest of what the embedded pieces' tokens depend on: the draw and the vocabulary."""
  import hashlib  # pylint: disable=import-outside-toplevel
  from mirjax.data.builders.embedded_music import EmbeddedMusic  # pylint: disable=import-outside-toplevel
  cfg = {c.name: c for c in EmbeddedMusic.BUILDER_CONFIGS}.get(config_name)
  draw = [cfg.num_pieces, cfg.seed] if cfg else []
  return hashlib.sha256(repr(_token_settings() + draw).encode()).hexdigest()[:12]


def _folder_key(folder) -> str:
  import hashlib  # pylint: disable=import-outside-toplevel
  h = hashlib.sha256(repr(_token_settings()).encode())
  for p in sorted(pathlib.Path(folder).rglob("*")):
    if p.suffix.lower() in MIDI_SUFFIXES and p.is_file():
      st = p.stat()
      h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
  return "folder-" + h.hexdigest()[:16]


def cached_tokens(data_dir: str, folder: str | None = None, config_name: str = "default") -> dict:
  """The token cache of the embedded pieces (`config_name`) or of a MIDI folder, made on
  the first call: tokens (concatenated int32), offsets (pieces + 1), names, styles (int32),
  style_names, split (int32 per piece: 0 train, 1 valid, 2 test) and skipped (path -> why)."""
  import json  # pylint: disable=import-outside-toplevel
  key = _folder_key(folder) if folder else f"corpus-{config_name}-{_corpus_key(config_name)}"
  path = _cache_path(data_dir, key)
  if not path.exists():
    if folder:
      pieces, styles, split, skipped, style_names = folder_pieces(folder)
    else:
      from mirjax.data.embedded import LABELS  # pylint: disable=import-outside-toplevel
      pieces, styles, split, skipped = corpus_pieces(config_name)
      style_names = list(LABELS["composer"])
    tokens = [encode(notes) for _, notes in pieces]
    which = np.zeros(len(pieces), np.int32)
    for k, s in enumerate(("train", "valid", "test")):
      which[split[s]] = k
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # processes building at once never share a file
    np.savez(tmp, tokens=np.concatenate(tokens).astype(np.int32),
             offsets=np.concatenate([[0], np.cumsum([t.size for t in tokens])]).astype(np.int64),
             names=np.asarray([p for p, _ in pieces]), styles=np.asarray(styles, np.int32),
             style_names=np.asarray(style_names), split=which, skipped=np.asarray(json.dumps(skipped)))
    tmp.replace(path)  # whole or not at all
  with np.load(path) as z:
    out = {k: z[k] for k in z.files}
  out["skipped"] = json.loads(str(out["skipped"]))
  return out


def load(cfg, data_dir: str, folder: str | None = None):
  """(sources, Info) of token windows for the train job: each example holds tokens
  (length + 1,) int32 (`windows`), its piece's style (int32) and piece index.

  cfg: the config's `data` (config "default" / "smoke" of the embedded pieces; sequence_length)."""
  from mirjax.data.features import ArraySource  # pylint: disable=import-outside-toplevel
  from mirjax.data.info import Info  # pylint: disable=import-outside-toplevel
  length = int(cfg.sequence_length)
  if length < 2:
    raise DataError(f"data.sequence_length = {length}: a window needs at least 2 tokens")
  cache = cached_tokens(data_dir, folder, cfg.config)
  tokens, offsets = cache["tokens"], cache["offsets"]
  sources = {}
  for k, s in enumerate(("train", "valid", "test")):
    rows, style, piece = [], [], []
    for i in np.flatnonzero(cache["split"] == k):
      w = windows(tokens[offsets[i]:offsets[i + 1]], length)
      rows.append(w)
      style += [cache["styles"][i]] * len(w)
      piece += [i] * len(w)
    sources[s] = ArraySource({"tokens": np.concatenate(rows), "style": np.asarray(style, np.int32),
                              "piece": np.asarray(piece, np.int32)})
  name = f"midi/{pathlib.PurePath(folder).name}" if folder else f"notes/{cfg.config}"
  info = Info(name=name, sample_rate=0, num_examples={s: len(src) for s, src in sources.items()},
              class_names=tuple(str(n) for n in cache["style_names"]), skipped=len(cache["skipped"]),
              skipped_files=dict(cache["skipped"]), vocab_size=VOCAB)
  return sources, info
