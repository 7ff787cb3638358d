"""mirjax's default audio-visual speaker data: SYNTHETIC voices and faces of made-up people,
made on this machine (no download) and written in VoxCeleb1's own layout, so the one reader
(`mirjax.data.voxceleb.read_voxceleb`) reads it and the real VoxCeleb1 alike.

  vox = avspeakers.load()          # builds on first use (25 s on 2 cores), then reads the cache
  vox.utterances_of("dev"), vox.trials["veri_test2.txt"]

What it is: 64 identities ("default"; 48 dev, 16 test, so test identities are never trained
on, as in VoxCeleb1-O) of 20 utterances each, 2-3 s at 16 kHz, in 3-6 "videos" per identity,
with 5 face frames (64 x 64 JPEG) per utterance and a veri_test2.txt of 3,840 balanced trials
over the test identities: 46 MB (61 MB on disk, for its 6,400 small JPEGs). The WAVs are 4-bit
IMA ADPCM, not VoxCeleb's 16-bit PCM, to keep the folder small; soundfile reads both.
Voices come from a source-filter synthesiser (`voices`: glottal pulses at the identity's f0
with jitter, shimmer and breathiness, formants scaled by its vocal-tract length, its own vowel
and consonant habits and speaking rate; the words are random syllables, different in every
utterance). Faces are drawn shapes (`faces`: head and jaw shape, eye spacing, skin and hair
colour, beard) with per-utterance pose, expression and blinks, lit and coloured per video, with
a mouth that opens with that utterance's speech envelope at each frame's time. Each video has
its own microphone colour, background noise (15-35 dB SNR), background and light, so that, as
in VoxCeleb, utterances of one video share more than their speaker.
Voice and face share two latents, sex and age, as in real people: sex sets f0 and vocal-tract
length and the face's width, jaw and beard; age nudges f0, jitter and rate and greys the hair.
All else is drawn independently for voice and face, so cross-modal verification is possible
but hard (over the 64 identities, log f0 and a face width measured from the frames correlate
at r = -0.6). `synthetic_attributes.csv` lists every identity's latents and settings.

What it can show: that a pipeline runs end to end on VoxCeleb's layout; that audio, face, fused
and cross-modal embeddings learn identity from this data's cues (even an utterance's mean
log-mel finds another video of its speaker as nearest neighbour 36 % of the time, chance
being 1.5 %); relative effects where the cue is known (e.g. a face model that ignores the
mouth is blind to the speech envelope).
What it cannot show: accuracy on real people. Real voices and faces vary in ways this data
lacks (real phonetics and languages, emotion, reverberation, crowd noise, real faces and
occlusions, ageing between videos), so equal error rates here say nothing of VoxCeleb's.
"""
import os
import shutil
import time
from typing import NamedTuple

import numpy as np

from mirjax.data import default_data_dir, parallel
from mirjax.data.embedded import faces, voices
from mirjax.errors import DataError

VERSION = "1"  # bump whenever the generator's output changes: it names the cache folder
SAMPLE_RATE = voices.SAMPLE_RATE
# 4-bit IMA ADPCM WAV: about 30 dB SNR, under the recordings' own noise, at a quarter of 16-bit
# PCM's size (VoxCeleb's own), which would make the default folder over 100 MB.
WAV_SUBTYPE = "IMA_ADPCM"
JPEG_QUALITY = 90
FIRST_ID = 10001  # identities are id10001, id10002, ... as in VoxCeleb1
VIDEO_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # YouTube's
META_HEADER = ("VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set")
TRIAL_LIST = "veri_test2.txt"


class Size(NamedTuple):
  """How much data a config makes."""
  identities: int
  test_identities: int        # of them, held out for trials (never in "dev")
  utterances: int             # per identity
  videos: tuple               # (min, max) videos per identity
  seconds: tuple              # (min, max) utterance length
  frames: int                 # face frames per utterance
  image_size: int             # frame height and width in pixels
  trials_per_utterance: int   # each test utterance enrols this many targets and as many non-targets


CONFIGS = {
    "default": Size(64, 16, 20, (3, 6), (2.0, 3.0), 5, 64, 6),
    "smoke": Size(12, 4, 4, (1, 2), (1.0, 1.5), 2, 48, 2),
}


class Identity(NamedTuple):
  """One made-up person: latents, voice, face, videos and utterance plan."""
  id: str
  name: str
  male: bool
  age: float
  set: str
  face_male: bool   # the latents the face was drawn from (the voice's, unless decoupled)
  face_age: float
  voice: voices.Voice
  face: faces.Face
  videos: tuple     # (video id, voices.Session, faces.Scene) per video
  utterances: tuple  # (video index, segment "00001") per utterance


def _rngs(seed: int, *stream):
  return np.random.default_rng([seed, *stream])


def make_identity(seed: int, index: int, size: Size, test: bool, coupling: float = 1.0) -> Identity:
  """Identity `index` of a dataset: the same for a seed whatever else is made.

  `coupling` is the chance that the face is drawn from the voice's sex and age (1: always, as
  in the data; 0: never, a control in which voice and face share nothing). The voice, the
  face's other features, videos and utterances do not depend on it.
  """
  lat = _rngs(seed, 0, index)
  male, age = bool(lat.random() < 0.55), float(lat.uniform(20, 75))
  other_male, other_age = bool(lat.random() < 0.55), float(lat.uniform(20, 75))
  shared = lat.random() < coupling
  face_male, face_age = (male, age) if shared else (other_male, other_age)
  rv = _rngs(seed, 1, index)
  a = (age - 20) / 55  # 0 at 20, 1 at 75
  f0 = (120.0 * (1 + 0.10 * a) if male else 210.0 * (1 - 0.10 * a)) * 2 ** (rv.normal(0, 2.0) / 12)
  voice = voices.Voice(
      f0=float(f0), vtl=float(rv.normal(17.0, 0.6) if male else rv.normal(14.6, 0.6)),
      formant_dev=np.exp(rv.normal(0, 0.08, 4)), bandwidth_scale=float(rv.uniform(0.8, 1.3)),
      jitter=float(rv.uniform(0.004, 0.015) + 0.01 * a), shimmer=float(rv.uniform(0.02, 0.07) + 0.03 * a),
      breathiness=float(rv.uniform(0.02, 0.2) + (0.0 if male else 0.05)),
      open_quotient=float(rv.uniform(0.45, 0.7) + (0.0 if male else 0.05)),
      rate=float(rv.uniform(0.8, 1.25) - 0.1 * a), f0_range=float(rv.uniform(1.5, 5.0)),
      vowel_weights=rv.dirichlet(np.full(len(voices.VOWELS), 1.0)),
      consonant_weights=rv.dirichlet(np.full(len(voices.CONSONANTS), 1.0)))
  face = faces.random_face(_rngs(seed, 2, index), face_male, face_age)
  rs = _rngs(seed, 3, index)
  n_videos = int(min(size.utterances, rs.integers(size.videos[0], size.videos[1] + 1)))
  videos = tuple(("".join(rs.choice(list(VIDEO_ID_CHARS), 11)), voices.random_session(rs),
                  faces.random_scene(rs)) for _ in range(n_videos))
  of_video = np.sort(np.concatenate([np.arange(n_videos),
                                     rs.integers(0, n_videos, size.utterances - n_videos)]))
  counts = {}
  plan = []
  for v in of_video:
    counts[v] = counts.get(v, 0) + 1
    plan.append((int(v), f"{counts[v]:05d}"))
  sid = f"id{FIRST_ID + index}"
  return Identity(sid, f"Synth_{index + 1:04d}", male, age, "test" if test else "dev", face_male,
                  face_age, voice, face, videos, tuple(plan))


def _test_indices(seed: int, size: Size) -> set:
  return set(_rngs(seed, 4).permutation(size.identities)[:size.test_identities].tolist())


def _write_identity(job) -> list:
  """Writes one identity's WAVs and face frames; returns [(key, seconds)] (for worker processes)."""
  import soundfile as sf  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  folder, seed, index, size, test, coupling = job
  ident = make_identity(seed, index, size, test, coupling)
  written = []
  for u, (v, segment) in enumerate(ident.utterances):
    video, session, scene = ident.videos[v]
    rng = _rngs(seed, 5, index, u)
    seconds = float(rng.uniform(*size.seconds))
    n = int(round(seconds * SAMPLE_RATE))
    audio, loudness = voices.synthesize(rng, ident.voice, session, n)
    wav = os.path.join(folder, "wav", ident.id, video, segment + ".wav")
    os.makedirs(os.path.dirname(wav), exist_ok=True)
    sf.write(wav, audio, SAMPLE_RATE, subtype=WAV_SUBTYPE)
    times = (np.arange(size.frames) + 0.5) / size.frames * seconds
    mouth = voices.mouth_opening(loudness, times)
    pose = faces.random_pose(rng)
    frame_dir = os.path.join(folder, "unzippedIntervalFaces", "data", ident.name, "1.6", video,
                             str(int(segment)))
    os.makedirs(frame_dir, exist_ok=True)
    for k in range(size.frames):  # the head moves a little during the utterance
      moved = pose._replace(yaw=pose.yaw + rng.normal(0, 0.04), shift=pose.shift + rng.normal(0, 0.01, 2))
      blink = float(rng.random() < 0.1)
      frame = faces.render(ident.face, scene, moved, mouth[k], blink, size.image_size, rng)
      Image.fromarray(frame).save(os.path.join(frame_dir, f"{k + 1:04d}.jpg"), quality=JPEG_QUALITY)
    written.append((f"{ident.id}/{video}/{segment}", seconds))
  return written


def _trials(seed: int, keys_by_speaker: dict, per_utterance: int) -> list:
  """Balanced trials over the test speakers: every utterance enrols `per_utterance` others of
  its speaker (targets) and as many of other speakers (non-targets)."""
  rng = _rngs(seed, 6)
  speakers = sorted(keys_by_speaker)
  lines = []
  for s in speakers:
    others = [k for t in speakers if t != s for k in keys_by_speaker[t]]
    for enrol in keys_by_speaker[s]:
      same = [k for k in keys_by_speaker[s] if k != enrol]
      k = min(per_utterance, len(same))
      for test in rng.choice(same, k, replace=False):
        lines.append(f"1 {enrol}.wav {test}.wav")
      for test in rng.choice(others, k, replace=False):
        lines.append(f"0 {enrol}.wav {test}.wav")
  return lines


def generate(folder, config: str | Size = "default", seed: int = 0, coupling: float = 1.0,
             workers: int | None = None) -> str:
  """Writes the synthetic dataset into `folder` (created; must not exist or be empty).

  Args:
    folder: where to write the VoxCeleb1 layout (wav/, unzippedIntervalFaces/data/,
      vox1_meta.csv, veri_test2.txt, synthetic_attributes.csv, README.txt).
    config: a key of CONFIGS or a `Size`.
    seed: everything written is a function of the seed (and config and coupling).
    coupling: chance that an identity's face shares its voice's sex and age (default 1).
      0 is a control: voice and face share nothing.
    workers: processes drawing identities (default `parallel.default_workers()`).

  Returns:
    the folder, as str.
  """
  size = CONFIGS[config] if isinstance(config, str) and config in CONFIGS else config
  if not isinstance(size, Size):
    raise DataError(f"unknown avspeakers config {config!r}; choose one of {sorted(CONFIGS)} or "
                    "pass a Size")
  if size.test_identities < 2 or size.test_identities >= size.identities or size.utterances < 2:
    raise DataError(f"{size}: need at least 2 test identities, a dev identity and 2 utterances each")
  folder = os.fspath(folder)
  if os.path.isdir(folder) and os.listdir(folder):
    raise DataError(f"{folder!r} is not empty: generate writes into a new or empty folder")
  os.makedirs(folder, exist_ok=True)
  test = _test_indices(seed, size)
  jobs = [(folder, seed, i, size, i in test, coupling) for i in range(size.identities)]
  workers = parallel.default_workers() if workers is None else workers
  keys = {}
  for job, written in zip(jobs, parallel.imap(_write_identity, jobs, workers, "synthetic speakers",
                                              unit="identity")):
    if job[4]:
      keys[f"id{FIRST_ID + job[2]}"] = [k for k, _ in written]
  idents = [make_identity(seed, i, size, i in test, coupling) for i in range(size.identities)]
  with open(os.path.join(folder, "vox1_meta.csv"), "w", encoding="utf-8") as f:
    f.write("\t".join(META_HEADER) + "\n")
    for p in idents:
      f.write("\t".join((p.id, p.name, "m" if p.male else "f", "Synthetic", p.set)) + "\n")
  with open(os.path.join(folder, TRIAL_LIST), "w", encoding="utf-8") as f:
    f.write("\n".join(_trials(seed, keys, size.trials_per_utterance)) + "\n")
  with open(os.path.join(folder, "synthetic_attributes.csv"), "w", encoding="utf-8") as f:
    f.write("id,set,male,age,face_male,face_age,f0_hz,vtl_cm,speaking_rate,breathiness,"
            "face_width,jaw,beard,hair_down,eye_spacing,skin_r,skin_g,skin_b,hair_r,hair_g,hair_b\n")
    for p in idents:
      v, fc = p.voice, p.face
      row = [p.id, p.set, int(p.male), f"{p.age:.1f}", int(p.face_male), f"{p.face_age:.1f}",
             f"{v.f0:.2f}", f"{v.vtl:.3f}", f"{v.rate:.3f}", f"{v.breathiness:.3f}",
             f"{fc.width:.4f}", f"{fc.jaw:.4f}", f"{fc.beard:.3f}", f"{fc.hair_down:.2f}",
             f"{fc.eye_spacing:.4f}"] + [f"{c:.3f}" for c in (*fc.skin, *fc.hair)]
      f.write(",".join(map(str, row)) + "\n")
  with open(os.path.join(folder, "README.txt"), "w", encoding="utf-8") as f:
    f.write(f"SYNTHETIC data made by mirjax.data.embedded.avspeakers (version {VERSION}, seed {seed}, "
            f"coupling {coupling}): {size}.\nNo real person's voice or face is in it.\n\n"
            + (__doc__ or ""))
  return folder


def cache_folder(config: str = "default", data_dir: str | None = None, seed: int = 0) -> str:
  """Where `ensure` keeps a config: <data dir>/mirjax_avspeakers/<config>-seed<seed>-v<VERSION>."""
  return os.path.join(data_dir or default_data_dir(), "mirjax_avspeakers",
                      f"{config}-seed{seed}-v{VERSION}")


def ensure(config: str = "default", data_dir: str | None = None, seed: int = 0,
           workers: int | None = None) -> str:
  """The folder of a config, generated first if it is not there yet. A half-written folder is
  never read: it is written under a temporary name and renamed when complete."""
  if config not in CONFIGS:
    raise DataError(f"unknown avspeakers config {config!r}; choose one of {sorted(CONFIGS)}")
  folder = cache_folder(config, data_dir, seed)
  if os.path.isdir(folder):
    return folder
  tmp = f"{folder}.tmp-{os.getpid()}-{time.monotonic_ns()}"
  try:
    generate(tmp, config, seed, workers=workers)
    os.rename(tmp, folder)
  except OSError:
    if not os.path.isdir(folder):  # another process finishing first is fine; anything else is not
      raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return folder


def load(config: str = "default", data_dir: str | None = None, seed: int = 0, **read_kwargs):
  """The synthetic data as a `mirjax.data.voxceleb.VoxCeleb` (built on first use).

  `read_kwargs` go to `read_voxceleb` (e.g. check_frames="none" to skip opening every JPEG).
  """
  from mirjax.data import voxceleb  # pylint: disable=import-outside-toplevel
  return voxceleb.read_voxceleb(ensure(config, data_dir, seed), **read_kwargs)
