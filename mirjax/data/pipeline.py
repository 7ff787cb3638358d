"""Input pipelines (grain): per-process shards of global batches, checkpointable.

Training: shuffle (reshuffled every epoch) -> repeat -> this process's slice -> random
crop -> batch, read by threads or by grain worker processes (the same batches). The
iterator's state is a small dict saved with every checkpoint, so a resumed run reads
exactly the batches an uninterrupted run would have read, whichever reads them.
Evaluation: every example once, in order, as `n_chunks` evenly spaced crops; the last
global batch is padded and masked.
"""
import functools
import math
import os
import threading
import time
from typing import Callable, NamedTuple

import grain
import jax
import numpy as np
from jax.experimental import multihost_utils

from mirjax.errors import DataError


def load(cfg):
  """(sources: {split: random-access source}, info) for the dataset named by cfg.name.

  Datasets are built on first use, by `cfg.build_workers` processes (0: one per core). In a
  multi-process run process 0 builds first while the others wait, so processes sharing a
  disk never build the same dataset at once.
  """
  from mirjax.data import parallel  # pylint: disable=import-outside-toplevel
  with parallel.using(int(cfg.get("build_workers", 0))):
    if jax.process_count() > 1:
      if jax.process_index() == 0:
        _load(cfg)
      multihost_utils.sync_global_devices("mirjax: dataset ready")
    return _load(cfg)


class Dataset(NamedTuple):
  """A dataset mirjax can open by name (`config.data.name`)."""
  load: Callable  # (cfg: config.data, data_dir: str | None) -> (sources, Info)
  manual_dir: str | None  # what --config.data.manual_dir must hold; None: it reads no folder


DATASETS: dict[str, Dataset] = {}  # data.name -> Dataset


def register(name: str, manual_dir: str | None = None):
  """Decorator adding a loader `fn(cfg, data_dir) -> (sources, info)` to DATASETS as `name`;
  `manual_dir` says what the dataset's folder holds (the error for a missing folder shows it)."""
  def add(fn):
    if name in DATASETS:
      raise ValueError(f"a dataset {name!r} is registered already")
    DATASETS[name] = Dataset(fn, manual_dir)
    return fn
  return add


def _load(cfg):
  if cfg.name not in DATASETS:
    raise DataError(f"unknown data.name {cfg.name!r}; mirjax has {sorted(DATASETS)}")
  dataset = DATASETS[cfg.name]
  if dataset.manual_dir is not None and not cfg.manual_dir:
    raise DataError(f"data.name={cfg.name!r} reads a local folder: pass "
                    f"--config.data.manual_dir=DIR with {dataset.manual_dir}")
  return dataset.load(cfg, cfg.data_dir or None)


# The datasets mirjax has. Loaders import their builders when called: opening one dataset
# imports no other.
@register("embedded")
def _embedded(cfg, data_dir):
  from mirjax.data import embedded
  return embedded.load(cfg.config, data_dir=data_dir, label=cfg.get("label") or None)


@register("folder", "your audio files + tags.csv")
def _folder(cfg, data_dir):
  from mirjax.data import folder
  return folder.load_folder(cfg.manual_dir, data_dir=data_dir, sample_rate=cfg.sample_rate,
                            clip_seconds=cfg.clip_seconds)


@register("mtat", "the MagnaTagATune distribution: annotations_final.csv, clip_info_final.csv, 0/..f/")
def _mtat(cfg, data_dir):
  from mirjax.data import public
  return public.load_mtat(cfg.manual_dir, data_dir, convention=cfg.convention,
                          sample_rate=cfg.sample_rate, top_k=cfg.top_k)


@register("gtzan", "GTZAN: genres/<genre>/<genre>.NNNNN.wav")
def _gtzan(cfg, data_dir):
  from mirjax.data import public
  return public.load_gtzan(cfg.manual_dir, data_dir, sample_rate=cfg.sample_rate)


@register("esc50", "ESC-50: meta/esc50.csv and audio/*.wav")
def _esc50(cfg, data_dir):
  from mirjax.data import public
  return public.load_esc50(cfg.manual_dir, data_dir, fold=cfg.fold, sample_rate=cfg.sample_rate)


@register("nsynth", "NSynth: nsynth-{train,valid,test}/examples.json and audio/*.wav")
def _nsynth(cfg, data_dir):
  from mirjax.data import public
  return public.load_nsynth(cfg.manual_dir, data_dir, sample_rate=cfg.sample_rate)


@register("audio", "any audio files, unlabelled (self-supervised pre-training)")
def _audio(cfg, data_dir):
  from mirjax.data import public
  return public.load_unlabelled(cfg.manual_dir, data_dir, sample_rate=cfg.sample_rate)


def _speaker_sources(vox, name, cfg):
  from mirjax.data import speakers  # pylint: disable=import-outside-toplevel
  return speakers.verification_sources(vox, name, trial_list=cfg.trial_list, n_frames=cfg.n_frames,
                                       face_size=cfg.face_size, cohort_per_speaker=cfg.cohort_per_speaker,
                                       seed=cfg.get("cohort_seed", 0))


@register("features", "the features a job wrote: features.json and features_<split>.npz "
          "(e.g. WORKDIR/features of a kmeans run)")
def _features(cfg, data_dir):  # pylint: disable=unused-argument
  from mirjax.data import features  # pylint: disable=import-outside-toplevel
  return features.load_features(cfg.manual_dir)


@register("song_factors", "the song factors a recommend run wrote: factors.json and factors.npz "
          "(WORKDIR/factors/seed<S>)")
def _song_factors(cfg, data_dir):
  from mirjax.data import song_factors  # pylint: disable=import-outside-toplevel
  return song_factors.load(cfg, data_dir, _load_base)


def _load_base(cfg, data_dir):
  """The audio dataset a derived dataset (song factors) names by its data config `cfg`."""
  if cfg.name == "song_factors":
    raise DataError("a song-factor folder's base must be an audio dataset, not another song-factor folder")
  with cfg.unlocked():
    cfg.data_dir = data_dir or ""
  return _load(cfg)


@register("notes")
def _notes(cfg, data_dir):
  """Event tokens of the embedded dataset's music21 pieces (config "default" / "smoke")."""
  from mirjax.data import default_data_dir, symbolic  # pylint: disable=import-outside-toplevel
  return symbolic.load(cfg, data_dir or default_data_dir())


@register("midi", "a folder of .mid / .midi files (a piece's style is its first sub-folder)")
def _midi(cfg, data_dir):
  from mirjax.data import default_data_dir, symbolic  # pylint: disable=import-outside-toplevel
  return symbolic.load(cfg, data_dir or default_data_dir(), folder=cfg.manual_dir)


@register("aligned")
def _aligned(cfg, data_dir):
  """The embedded clips without drums, rendered again with their piano rolls (data/aligned.py)."""
  from mirjax.data import aligned, default_data_dir  # pylint: disable=import-outside-toplevel
  return aligned.load(cfg, data_dir or default_data_dir())


@register("avspeakers")
def _avspeakers(cfg, data_dir):
  """The embedded synthetic speakers (voices and faces made on this machine), VoxCeleb1's layout."""
  from mirjax.data.embedded import avspeakers  # pylint: disable=import-outside-toplevel
  vox = avspeakers.load(cfg.config, data_dir=data_dir, faces="auto" if cfg.n_frames else "none")
  return _speaker_sources(vox, f"avspeakers/{cfg.config}", cfg)


@register("voxceleb", "VoxCeleb: wav/<speaker>/<video>/<nnnnn>.wav, vox1_meta.csv, trial lists, "
          "face frames (see mirjax.data.voxceleb.LAYOUT)")
def _voxceleb(cfg, data_dir):  # pylint: disable=unused-argument
  from mirjax.data import voxceleb  # pylint: disable=import-outside-toplevel
  faces = cfg.get("faces", "auto") if cfg.n_frames else "none"
  vox = voxceleb.read_voxceleb(cfg.manual_dir, faces=faces, sample_rate=cfg.sample_rate)
  return _speaker_sources(vox, f"voxceleb/{vox.faces or 'audio'}", cfg)


class Subset:
  """The examples `indices` of a random-access source, as a source."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices, np.int64)

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, i):
    return self.source[int(self.indices[i])]


def carve_holdout(source, fraction: float, seed: int):
  """(rest, holdout): a random `fraction` of `source` held out (at least one example), the
  same for a seed on every process."""
  n = len(source)
  k = max(1, int(round(fraction * n)))
  if k >= n:
    raise DataError(f"holdout fraction {fraction} leaves no training example of {n}")
  order = np.random.default_rng([seed, 7]).permutation(n)
  return Subset(source, np.sort(order[k:])), Subset(source, np.sort(order[:k]))


def to_float(audio: np.ndarray) -> np.ndarray:
  """int16 PCM -> float32 in [-1, 1)."""
  return audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)


def other_inputs(ex) -> dict:
  """The model inputs of an example besides its audio (mirjax/inputs.py), as float32:
  face frames stored as uint8 become [0, 1]; tokens and styles (int32) stay integers; a piano
  roll stays 0 / 1."""
  from mirjax.inputs import INPUTS  # pylint: disable=import-outside-toplevel

  def cast(k, v):
    if k in ("tokens", "style"):
      return np.asarray(v, np.int32)
    if k == "roll":  # 0 / 1 per frame and pitch
      return np.asarray(v, np.float32)
    return v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v.astype(np.float32)
  return {k: cast(k, ex[k]) for k in INPUTS if k != "audio" and k in ex}


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
  """Zero-pad at the end to at least n samples."""
  return np.pad(audio, (0, n - len(audio))) if len(audio) < n else audio



def clip_batches(source, n_samples: int, batch: int):
  """(audio (batch, n_samples) float32, number of real clips) over every example of a source
  in order: each clip's first n_samples (zero-padded when shorter); the last batch is padded
  with silent clips to full size, so one compiled program serves every batch."""
  for start in range(0, len(source), batch):
    clips = [to_float(fit_length(source[i]["audio"], n_samples)[:n_samples])
             for i in range(start, min(start + batch, len(source)))]
    real = len(clips)
    clips += [np.zeros(n_samples, np.float32)] * (batch - real)
    yield np.stack(clips), real


def train_iterator(source, *, local_batch: int, crop: int, seed: int, target: str = "tags",
                   read_threads: int = 2, worker_processes: int = 0, extra: tuple = ()):
  """Infinite iterator of {'audio': (local_batch, crop) f32, target: ...} for this process,
  with the example's other inputs (e.g. 'frames') as they are; `target` names the example
  field of the ground truth ('tags', 'label', ...), `extra` further fields a task's loss
  reads (e.g. the weighted prediction error's 'wpe_gram').

  `read_threads` threads read and crop examples; with `worker_processes` > 0 that many
  worker processes do, each with `read_threads` threads (`WorkerBatches`): the same batches
  in the same order, and a state either kind of iterator resumes from. `source` must then
  pickle (a TFDS data source, a list of arrays)."""
  fields = ((target,) if target else ()) + tuple(extra)  # self-supervised: audio only

  def random_crop(ex, rng: np.random.Generator):
    try:
      targets = {f: ex[f] for f in fields}
    except KeyError:
      raise DataError(f"the task reads example fields {[f for f in fields if f not in ex]} this dataset does "
                      f"not have (it has {sorted(ex)})") from None
    if "audio" not in ex:  # a feature dataset: nothing to crop
      return {**other_inputs(ex), **targets}
    audio = fit_length(ex["audio"], crop)
    if "roll" in ex:  # audio and its piano roll cropped together, on frame boundaries
      hop = roll_hop(ex, crop)
      start = hop * int(rng.integers(0, (len(audio) - crop) // hop + 1))
      return {"audio": to_float(audio[start:start + crop]), **other_inputs(ex),
              "roll": crop_roll(ex["roll"], start, crop, hop), **targets}
    start = int(rng.integers(0, len(audio) - crop + 1))
    return {"audio": to_float(audio[start:start + crop]), **other_inputs(ex), **targets}

  stream = grain.MapDataset.source(source).seed(seed).shuffle().repeat().random_map(random_crop)
  # Process p takes rows [p * local, (p + 1) * local) of every global batch: the global batch
  # (examples, crops and order) is the one a single process would make.
  n, p = jax.process_count(), jax.process_index()
  rows = lambda j: (j // local_batch) * local_batch * n + p * local_batch + j % local_batch
  ds = stream if n == 1 else grain.MapDataset.range(0, len(stream) // n).map(lambda j: stream[rows(j)])
  ds = ds.batch(local_batch, drop_remainder=True)
  options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4)
  if worker_processes > 0:
    return WorkerBatches(ds, options, worker_processes)
  return iter(ds.to_iter_dataset(options))


class WorkerBatches:
  """Iterator over the batches of the MapDataset `batches` made by `workers` grain worker
  processes, each reading with `options` (its threads): worker w makes batches w, w +
  workers, ... and they are taken in turn, so the sequence is that of
  `iter(batches.to_iter_dataset(options))`. The state is that iterator's too, {"next_index":
  batches returned}, whatever the number of workers: a checkpoint of a run with threads
  only resumes with workers and the other way round. The workers start at the first batch
  asked for, from the batch the state names; `set_state` stops running ones. `close` stops
  them (they also stop when this process exits)."""

  def __init__(self, batches, options, workers: int, buffer: int = 2):
    self._batches, self._options = batches, options
    self._mp_options = grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=buffer)
    self._next, self._it = 0, None

  def __iter__(self):
    return self

  def __next__(self):
    if self._it is None:
      self._it = self._start()
    batch = next(self._it)
    self._next += 1
    return batch

  def _start(self):
    """Grain's iterator over the batches from the next one on, its workers started."""
    _flags_parsed()
    rest = self._batches[self._next:] if self._next else self._batches
    return iter(rest.to_iter_dataset(self._options).mp_prefetch(
        self._mp_options, worker_init_fn=functools.partial(_exit_with_parent, os.getpid())))

  def get_state(self) -> dict:
    return {"next_index": self._next}

  def set_state(self, state: dict):
    self.close()
    self._next = int(state["next_index"])

  def close(self):
    if self._it is not None:
      self._it.close()
      self._it = None


def _exit_with_parent(parent: int, worker: int, workers: int):
  """Run in each worker process as it starts: ends it once `parent`, the process that
  started it, is gone (killed, say, perhaps before this one had started), rather than
  leaving it to wait on a queue nobody reads."""
  del worker, workers

  def watch():
    while os.getppid() == parent:
      time.sleep(1.0)
    os._exit(0)  # pylint: disable=protected-access
  threading.Thread(target=watch, name="mirjax-exit-with-parent", daemon=True).start()


def _flags_parsed():
  """Marks absl flags parsed (their defaults) where no absl app parsed them (tests,
  notebooks): grain reads a flag of its own when it starts worker processes."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def roll_hop(ex, crop: int) -> int:
  """Samples per frame of an example's piano roll ("roll", aligned with its audio: data/aligned.py);
  a crop must be whole frames."""
  hop = len(ex["audio"]) // ex["roll"].shape[0]
  if hop < 1 or len(ex["audio"]) != hop * ex["roll"].shape[0]:
    raise DataError(f"a roll of {ex['roll'].shape[0]} frames does not tile {len(ex['audio'])} audio samples")
  if crop % hop:
    raise DataError(f"a crop of {crop} samples is not whole roll frames of {hop}: set data.crop_seconds "
                    f"to a multiple of {hop} samples")
  return hop


def crop_roll(roll, start: int, crop: int, hop: int) -> np.ndarray:
  """The roll frames (float32 0 / 1) of audio samples [start, start + crop), `hop` samples a
  frame (`roll_hop`)."""
  return np.asarray(roll[start // hop:(start + crop) // hop], np.float32)


def chunk_starts(length: int, crop: int, n_chunks: int) -> np.ndarray:
  """Start samples of n evenly spaced crops covering a clip of `length` samples."""
  return np.linspace(0, max(length - crop, 0), n_chunks).round().astype(int)


def eval_batches(source, *, global_batch: int, crop: int, n_chunks: int, target: str = "tags",
                 read_threads: int = 2):
  """Yields this process's part of each global batch:
  {'audio': (local, n_chunks, crop) f32, target: ..., 'mask': (local,) bool}; the example's
  other inputs (e.g. 'frames') are repeated for each chunk: (local, n_chunks, ...)."""
  n, procs, p = len(source), jax.process_count(), jax.process_index()
  local = global_batch // procs
  total = math.ceil(n / global_batch) * global_batch
  first = source[0] if n else {}
  has_audio = "audio" in first or not n  # a feature dataset has none: its inputs are repeated

  def read(i):
    ex = source[i] if i < n else {"audio": np.zeros(len(first["audio"]) if "roll" in first else crop, np.int16),
                                  **{k: np.zeros_like(v) for k, v in other_inputs(first).items()}}
    out = {"mask": np.bool_(i < n)}
    out.update({k: np.repeat(v[None], n_chunks, axis=0) for k, v in other_inputs(ex).items()})
    if has_audio:
      audio = fit_length(ex["audio"], crop)
      starts = chunk_starts(len(audio), crop, n_chunks)
      if "roll" in ex:  # each chunk with its own roll frames
        hop = roll_hop(ex, crop)
        starts = starts // hop * hop
        out["roll"] = np.stack([crop_roll(ex["roll"], s, crop, hop) for s in starts])
      out["audio"] = to_float(np.stack([audio[s:s + crop] for s in starts]))
    if target:
      out[target] = ex[target] if i < n else np.zeros_like(first[target])
    return out

  order = np.arange(total).reshape(-1, procs, local)[:, p].reshape(-1)
  ds = grain.MapDataset.source(order).map(read).batch(local)
  yield from ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=2))
