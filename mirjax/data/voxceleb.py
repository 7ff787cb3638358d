"""VoxCeleb1 (and converted VoxCeleb2) for audio-visual speaker verification, read from the
real distribution in a folder the user names. Nothing is downloaded.

  vox = read_voxceleb("/data/voxceleb1")
  train = vox.utterances_of("dev")                     # test identities never among them
  trials = vox.trials["veri_test2.txt"]                # VoxCeleb1-O (cleaned)
  audio = load_audio(train[0])                         # float32 (samples,), 16 kHz mono
  faces = load_frames(train[0], n=4, size=64)          # float32 (4, 64, 64, 3) in [0, 1]

Everything is plain Python and NumPy. A file that cannot be used is skipped, counted and
listed with its reason (`VoxCeleb.skipped_files`), and a trial naming a skipped or missing
utterance is dropped and reported (`VoxCeleb.dropped_trials`), never silently.
"""
import csv
import dataclasses
import logging
import os
import re
from typing import NamedTuple

import numpy as np

from mirjax.data import audio_io
from mirjax.errors import DataError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Hz: every VoxCeleb WAV is 16 kHz mono 16-bit PCM
META_FILES = ("vox1_meta.csv", "vox2_meta.csv")
# The published trial lists (cleaned "2" versions first): label enrol test, paths under wav/.
TRIAL_LISTS = ("veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt",
               "veri_test.txt", "list_test_all.txt", "list_test_hard.txt")
FACES_REAL = os.path.join("unzippedIntervalFaces", "data")  # VoxCeleb1's face-frame zip
FACES_MIRROR = "frames"
FACE_TRACK_VERSION = "1.6"  # the one folder under each name in unzippedIntervalFaces
JPEG_SUFFIXES = (".jpg", ".jpeg")
MAX_LISTED_TRIALS = 5  # dropped trials quoted per list

LAYOUT = """\
Expected layout of a VoxCeleb folder DIR (pass it as manual_dir):
  DIR/wav/<speaker id>/<video id>/<nnnnn>.wav   16 kHz mono WAV, e.g. wav/id10270/x6uYqmx31kE/00001.wav
                                                (vox1_dev_wav.zip and vox1_test_wav.zip both unzip here)
  DIR/vox1_meta.csv (or vox2_meta.csv)          tab- or comma-separated, header
                                                "VoxCeleb1 ID  VGGFace1 ID  Gender  Nationality  Set";
                                                Set is dev or test (test identities are never trained on)
  DIR/veri_test2.txt, list_test_all2.txt, ...   optional trial lists: "1 id10270/x6uYqmx31kE/00001.wav
                                                id10270/8jEAjG6SegY/00008.wav" (1 same speaker, 0 not)
  Face frames, optional, either layout:
  DIR/unzippedIntervalFaces/data/<VGGFace1 ID>/1.6/<video id>/<n>/*.jpg
                                                VoxCeleb1's cropped faces (unzipped as distributed): the
                                                name comes from vox1_meta.csv, <n> is the segment number
                                                without zeros (segment 00001 is folder 1)
  DIR/frames/<speaker id>/<video id>/<nnnnn>/*.jpg
                                                a mirror keyed like wav/ (the segment's own name)
  The meta csv and trial lists may also sit in DIR/meta/.
VoxCeleb2 is distributed as AAC (dev/aac/<id>/<video>/<n>.m4a), which soundfile cannot decode:
convert it once into DIR/wav/ (16 kHz mono WAV, same names); the error for an .m4a gives the command.
"""

CONVERT_ALL = ("cd {root} && find {aac} -name '*.m4a' | while read -r f; do o=\"wav/${{f#{aac}/}}\"; "
               "o=\"${{o%.m4a}}.wav\"; mkdir -p \"$(dirname \"$o\")\"; ffmpeg -nostdin -loglevel error "
               "-n -i \"$f\" -ac 1 -ar 16000 -acodec pcm_s16le \"$o\"; done")


class VoxCelebError(DataError):
  """A VoxCeleb folder, index file or utterance that cannot be used; the message says what to do."""


class Speaker(NamedTuple):
  """One identity's row of the meta csv."""
  id: str           # "id10270"
  name: str         # VGGFace1 / VGGFace2 ID: "Eartha_Kitt"; names the face-frame folder
  gender: str       # "m" or "f"
  nationality: str  # "" in vox2_meta.csv, which has no such column
  set: str          # "dev" or "test"


class Utterance(NamedTuple):
  """One segment: its audio and (where the folder has faces) its face frames in time order."""
  key: str                # "id10270/x6uYqmx31kE/00001": a trial path without ".wav"
  speaker: str            # "id10270"
  audio_path: str         # absolute path of the WAV
  frame_paths: tuple = ()  # absolute paths of its JPEG frames; () when the folder has no faces


class Trial(NamedTuple):
  """One line of a trial list."""
  label: int   # 1 same speaker (target), 0 different (non-target)
  enrol: str   # utterance key
  test: str    # utterance key


class DroppedTrials(NamedTuple):
  """Trials of one list that could not be scored."""
  count: int
  first: tuple  # the first MAX_LISTED_TRIALS as "line N: <line> (<why>)"


@dataclasses.dataclass(frozen=True)
class VoxCeleb:
  """What `read_voxceleb` found in a VoxCeleb folder.

  Attributes:
    root: the folder.
    sample_rate: Hz of every utterance kept (16000).
    faces: which face layout was read: "unzippedIntervalFaces", "frames" or "" (audio only).
    speakers: speaker id -> `Speaker`, for every identity in the meta csv.
    utterances: the usable utterances, sorted by key.
    trials: trial-list file name -> its trials whose two utterances are both usable.
    dropped_trials: list file name -> `DroppedTrials` (lists that dropped none are absent).
    skipped_files: path relative to root -> why it was left out (an unreadable WAV or JPEG,
      a segment without faces, a speaker missing from the meta csv, an undecoded .m4a).
    truncated_files: path -> why: WAVs cut short, used as far as they go.
  """
  root: str
  sample_rate: int
  faces: str
  speakers: dict
  utterances: tuple
  trials: dict
  dropped_trials: dict
  skipped_files: dict
  truncated_files: dict = dataclasses.field(default_factory=dict)

  @property
  def skipped(self) -> int:
    """Number of files (or folders) left out."""
    return len(self.skipped_files)

  def split(self, name: str) -> tuple:
    """Speaker ids whose meta Set is `name` ("dev" or "test") and that have an utterance."""
    have = {u.speaker for u in self.utterances}
    return tuple(sorted(s for s, sp in self.speakers.items() if sp.set == name and s in have))

  def utterances_of(self, name: str) -> tuple:
    """The utterances of the speakers of Set `name` ("dev" trains, "test" is VoxCeleb1-O's)."""
    if name not in {sp.set for sp in self.speakers.values()}:
      raise VoxCelebError(f"no speaker of Set {name!r} in the meta csv of {self.root!r}; "
                          f"its Sets are {sorted({sp.set for sp in self.speakers.values()})}")
    return tuple(u for u in self.utterances if self.speakers[u.speaker].set == name)

  def by_key(self) -> dict:
    """Utterance key -> `Utterance`."""
    return {u.key: u for u in self.utterances}


def _find(root: str, name: str) -> str | None:
  for folder in (root, os.path.join(root, "meta")):
    if os.path.isfile(os.path.join(folder, name)):
      return os.path.join(folder, name)
  return None


def read_meta(path) -> dict:
  """speaker id -> `Speaker` from vox1_meta.csv (tab-separated) or vox2_meta.csv (comma-separated,
  names padded with spaces): the separator is sniffed and every field stripped.

  Raises:
    VoxCelebError: the file lacks an id or a Set column.
  """
  path = os.fspath(path)
  with open(path, newline="", encoding="utf-8-sig") as f:
    text = f.read()
  header = text.splitlines()[0] if text.strip() else ""
  delimiter = "\t" if "\t" in header else ","
  rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
  columns = [c.strip() for c in rows[0]] if rows else []
  id_col = next((c for c in ("VoxCeleb1 ID", "VoxCeleb2 ID") if c in columns), None)
  if id_col is None or "Set" not in columns:
    raise VoxCelebError(f"{path!r} is not a VoxCeleb meta csv: its header is {columns}, which lacks "
                        "'VoxCeleb1 ID' (or 'VoxCeleb2 ID') and 'Set'.\n" + LAYOUT)
  name_col = next((c for c in ("VGGFace1 ID", "VGGFace2 ID", "Name") if c in columns), None)

  def get(row, col):
    i = columns.index(col) if col in columns else len(row)
    return row[i].strip() if i < len(row) else ""

  speakers = {}
  for row in rows[1:]:
    if not any(field.strip() for field in row):
      continue
    sid = get(row, id_col)
    speakers[sid] = Speaker(sid, get(row, name_col), get(row, "Gender"),
                            get(row, "Nationality"), get(row, "Set"))
  return speakers


def _listdir(path: str) -> list:
  return sorted(e for e in os.listdir(path) if not e.startswith("."))


def _aac_folders(root: str) -> list:
  return [a for a in (os.path.join("dev", "aac"), "aac") if os.path.isdir(os.path.join(root, a))]


def conversion_command(m4a_path, root=None) -> str:
  """The ffmpeg command that turns one VoxCeleb2 .m4a into the 16 kHz mono WAV the reader reads
  (`<root>/wav/<id>/<video>/<n>.wav`; without `root`, next to the .m4a)."""
  m4a_path = os.fspath(m4a_path)
  parts = m4a_path.split(os.sep)
  if root is not None and len(parts) >= 3:
    out = os.path.join(os.fspath(root), "wav", *parts[-3:-1], parts[-1][:-4] + ".wav")
  else:
    out = m4a_path[:-4] + ".wav"
  return f"ffmpeg -i {m4a_path} -ac 1 -ar 16000 -acodec pcm_s16le {out}"


def _m4a_error(path: str, root=None, whole_folder: bool = True) -> VoxCelebError:
  msg = (f"{path!r} is AAC (.m4a, as VoxCeleb2 is distributed), which soundfile cannot decode. "
         f"Convert it to 16 kHz mono WAV: `{conversion_command(path, root)}`")
  if root is not None and whole_folder:
    for aac in _aac_folders(root):
      msg += f"; or the whole folder at once: `{CONVERT_ALL.format(root=root, aac=aac)}`"
  return VoxCelebError(msg)


def _frame_sort_key(name: str):
  stem = os.path.splitext(name)[0]
  return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def _frame_folder(root: str, faces: str, speaker: Speaker, video: str, segment: str) -> str:
  if faces == "frames":
    return os.path.join(root, FACES_MIRROR, speaker.id, video, segment)
  base = os.path.join(root, FACES_REAL, speaker.name, FACE_TRACK_VERSION, video)
  numbered = os.path.join(base, str(int(segment)) if segment.isdigit() else segment)  # 00001 -> 1
  padded = os.path.join(base, segment)  # also accepted: the segment's own name
  return padded if not os.path.isdir(numbered) and os.path.isdir(padded) else numbered


def check_jpeg(path: str, decode: bool = False) -> str:
  """"" if Pillow reads `path` as an image (its header; every pixel with `decode`), else why not."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    if os.path.getsize(path) == 0:
      return "empty JPEG (0 bytes): a failed copy or unzip; replace or remove it"
    with Image.open(path) as im:
      if decode:
        im.load()
  except (OSError, SyntaxError, ValueError) as err:
    return f"unreadable JPEG ({err}); replace or remove it"
  return ""


def _check_wav(path: str, sample_rate: int) -> tuple[str, str]:
  """(why it is unusable or "", truncation note or "")."""
  try:
    info = audio_io.audio_info(path)
  except audio_io.AudioReadError as err:
    return str(err), ""
  if info.sample_rate != sample_rate:
    return (f"wrong sample rate: {info.sample_rate} Hz, VoxCeleb is {sample_rate} Hz; resample it "
            f"(`ffmpeg -i IN -ac 1 -ar {sample_rate} -acodec pcm_s16le OUT.wav`)"), ""
  return "", info.truncated


def read_trials(path, usable: dict, skipped_keys: dict) -> tuple[tuple, DroppedTrials]:
  """(trials, dropped) of one trial list: `usable` maps keys to utterances, `skipped_keys`
  maps keys of skipped utterances to why. A trial is dropped when a side is missing or
  skipped, or its line is malformed."""
  trials, dropped = [], []
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, start=1):
      if not line.strip():
        continue
      fields = line.split()
      why = ""
      if len(fields) != 3 or fields[0] not in ("0", "1"):
        why = "not 'label enrol test' with label 0 or 1"
      else:
        keys = [re.sub(r"\.(wav|m4a)$", "", p.replace("\\", "/")) for p in fields[1:]]
        for k in keys:
          if k in skipped_keys:
            why = f"{k} skipped: {skipped_keys[k]}"
            break
          if k not in usable:
            why = f"{k} not found under wav/"
            break
      if why:
        dropped.append(f"line {n}: {line.strip()} ({why})")
      else:
        trials.append(Trial(int(fields[0]), keys[0], keys[1]))
  return tuple(trials), DroppedTrials(len(dropped), tuple(dropped[:MAX_LISTED_TRIALS]))


def read_voxceleb(folder, *, faces: str = "auto", check_audio: bool = True,
                  check_frames: str = "open", sample_rate: int = SAMPLE_RATE) -> VoxCeleb:
  """Index a VoxCeleb folder (layout: `LAYOUT`): speakers, utterances, trial lists.

  Args:
    folder: the folder holding wav/ and the meta csv.
    faces: "auto" (default): read face frames if the folder has a face layout (then every
      utterance needs at least one readable frame); "unzippedIntervalFaces" or "frames": that
      layout, required; "none": audio only (`frame_paths` stay empty).
    check_audio: read every WAV's header (default): empty, undecodable and non-16 kHz files
      are skipped. False trusts the folder (faster on the full 153,516 files).
    check_frames: "open" (default) opens every JPEG's header with Pillow, "decode" decodes
      every pixel (also catches truncated JPEGs; slow on the full face set), "none" trusts them.
      An unreadable frame is skipped; its segment keeps its other frames.
    sample_rate: the rate every WAV must have, in Hz (default 16000).

  Returns:
    a `VoxCeleb`.

  Raises:
    VoxCelebError: the folder, wav/ or the meta csv is missing, or the folder holds only
      VoxCeleb2 .m4a files (the message gives the ffmpeg command that converts them).
  """
  root = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(root):
    raise VoxCelebError(f"VoxCeleb folder not found: {root!r}.\n{LAYOUT}")
  wav_root = os.path.join(root, "wav")
  if not os.path.isdir(wav_root):
    for aac in _aac_folders(root):
      for dirpath, _, files in sorted(os.walk(os.path.join(root, aac))):
        m4a = sorted(f for f in files if f.endswith(".m4a"))
        if m4a:
          raise _m4a_error(os.path.join(dirpath, m4a[0]), root)
    raise VoxCelebError(f"no wav/ folder in {root!r}.\n{LAYOUT}")
  meta_path = next((p for p in map(lambda n: _find(root, n), META_FILES) if p), None)
  if meta_path is None:
    raise VoxCelebError(f"no {' or '.join(META_FILES)} in {root!r} (or its meta/): it gives each "
                        "speaker's Set (dev or test), without which test identities could leak "
                        "into training. Get it from the VoxCeleb page, beside the audio.\n" + LAYOUT)
  speakers = read_meta(meta_path)
  if faces == "auto":
    faces = ("unzippedIntervalFaces" if os.path.isdir(os.path.join(root, FACES_REAL)) else
             FACES_MIRROR if os.path.isdir(os.path.join(root, FACES_MIRROR)) else "none")
  if faces not in ("unzippedIntervalFaces", FACES_MIRROR, "none"):
    raise VoxCelebError(f"faces={faces!r}: choose 'auto', 'unzippedIntervalFaces', 'frames' or 'none'")
  if check_frames not in ("open", "decode", "none"):
    raise VoxCelebError(f"check_frames={check_frames!r}: choose 'open', 'decode' or 'none'")
  face_dir = {"unzippedIntervalFaces": FACES_REAL, FACES_MIRROR: FACES_MIRROR}.get(faces)
  if face_dir and not os.path.isdir(os.path.join(root, face_dir)):
    raise VoxCelebError(f"faces={faces!r} but {os.path.join(root, face_dir)!r} is missing.\n{LAYOUT}")
  rel = lambda p: os.path.relpath(p, root)
  utterances, skipped, skipped_keys, truncated = [], {}, {}, {}

  def skip(path, key, why):
    skipped[rel(path)] = why
    if key:
      skipped_keys[key] = why

  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  for sid in tqdm(_listdir(wav_root), desc=f"reading {root}", unit="speaker", leave=False):
    spk_dir = os.path.join(wav_root, sid)
    if not os.path.isdir(spk_dir):
      continue
    if sid not in speakers:
      n = sum(len(fs) for _, _, fs in os.walk(spk_dir))
      skip(spk_dir, "", f"speaker {sid} is not in {os.path.basename(meta_path)} ({n} files left "
           "out): its Set (dev or test) is unknown")
      for video in _listdir(spk_dir):
        video_dir = os.path.join(spk_dir, video)
        for f in _listdir(video_dir) if os.path.isdir(video_dir) else ():
          skipped_keys[f"{sid}/{video}/{os.path.splitext(f)[0]}"] = f"speaker {sid} is not in the meta csv"
      continue
    for video in _listdir(spk_dir):
      video_dir = os.path.join(spk_dir, video)
      if not os.path.isdir(video_dir):
        continue
      for name in _listdir(video_dir):
        path = os.path.join(video_dir, name)
        segment, ext = os.path.splitext(name)
        key = f"{sid}/{video}/{segment}"
        if ext.lower() == ".m4a":
          skip(path, key, str(_m4a_error(path, root, whole_folder=False)))
          continue
        if ext.lower() != ".wav":
          skip(path, "", "not a .wav file")
          continue
        if check_audio:
          why, cut = _check_wav(path, sample_rate)
          if why:
            skip(path, key, why)
            continue
          if cut:
            truncated[rel(path)] = cut
        frames = ()
        if face_dir:
          fdir = _frame_folder(root, faces, speakers[sid], video, segment)
          names = (sorted((f for f in _listdir(fdir) if f.lower().endswith(JPEG_SUFFIXES)),
                          key=_frame_sort_key) if os.path.isdir(fdir) else [])
          good = []
          for f in names:
            fpath = os.path.join(fdir, f)
            why = check_jpeg(fpath, decode=check_frames == "decode") if check_frames != "none" else ""
            if why:
              skip(fpath, "", why)
            else:
              good.append(fpath)
          if not good:
            skip(path, key, (f"no readable face frame: {rel(fdir)}/ " +
                             ("holds no readable JPEG" if names else "is missing or holds no JPEG")))
            continue
          frames = tuple(good)
        utterances.append(Utterance(key, sid, path, frames))

  for aac in _aac_folders(root):  # VoxCeleb2 files not converted into wav/ yet
    for dirpath, _, files in sorted(os.walk(os.path.join(root, aac))):
      for f in sorted(files):
        if f.endswith(".m4a"):
          path = os.path.join(dirpath, f)
          key = "/".join(rel(path).split(os.sep)[-3:])[:-4]
          if not os.path.isfile(os.path.join(wav_root, key + ".wav")):
            skip(path, key, str(_m4a_error(path, root, whole_folder=False)))

  usable = {u.key: u for u in utterances}
  trials, dropped = {}, {}
  for name in TRIAL_LISTS:
    path = _find(root, name)
    if path:
      trials[name], d = read_trials(path, usable, skipped_keys)
      if d.count:
        dropped[name] = d
  vox = VoxCeleb(root=root, sample_rate=sample_rate, faces="" if faces == "none" else faces,
                 speakers=speakers, utterances=tuple(sorted(utterances)), trials=trials,
                 dropped_trials=dropped, skipped_files=dict(sorted(skipped.items())),
                 truncated_files=truncated)
  if skipped or dropped:
    logger.warning("%s", report(vox))
  return vox


def report(vox: VoxCeleb, max_files: int = 10) -> str:
  """What was skipped and dropped, for a log: the first `max_files` files, then a count."""
  lines = [f"VoxCeleb {vox.root}: {len(vox.utterances)} utterances of {len(vox.split('dev'))} dev and "
           f"{len(vox.split('test'))} test speakers; skipped {vox.skipped} file(s)"]
  items = list(vox.skipped_files.items())
  lines += [f"  {p}: {why}" for p, why in items[:max_files]]
  if len(items) > max_files:
    lines.append(f"  ... and {len(items) - max_files} more (VoxCeleb.skipped_files lists all)")
  if any(p.endswith(".m4a") for p in vox.skipped_files):
    for aac in _aac_folders(vox.root):
      lines.append(f"  convert every .m4a at once: {CONVERT_ALL.format(root=vox.root, aac=aac)}")
  for name, d in vox.dropped_trials.items():
    lines.append(f"  {name}: dropped {d.count} trial(s), e.g.")
    lines += [f"    {t}" for t in d.first]
  return "\n".join(lines)


def load_audio(utterance, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
  """One utterance's audio: float32 (samples,) mono in [-1, 1] at `sample_rate`.

  Args:
    utterance: an `Utterance`, or a path to its audio file.
    sample_rate: Hz (default 16000, VoxCeleb's own; other rates are resampled with soxr).

  Raises:
    VoxCelebError: the file is a VoxCeleb2 .m4a (the message gives the ffmpeg command).
    mirjax.data.audio_io.AudioReadError: the file is missing, empty or undecodable.
  """
  path = os.fspath(utterance.audio_path if isinstance(utterance, Utterance) else utterance)
  if path.lower().endswith(".m4a"):
    raise _m4a_error(path)
  return audio_io.load_audio(path, sample_rate)


def frame_indices(n_available: int, n: int) -> np.ndarray:
  """`n` evenly spaced indices into `n_available` frames, each at the centre of its 1/n of the
  track (frames repeat when there are fewer than n)."""
  if n_available <= 0 or n <= 0:
    raise VoxCelebError(f"cannot pick {n} frames of {n_available}")
  return np.minimum(((np.arange(n) + 0.5) * n_available / n).astype(np.int64), n_available - 1)


def load_frames(utterance, n: int = 4, size: int = 64) -> np.ndarray:
  """`n` evenly spaced face frames of an utterance, as float32 (n, size, size, 3) in [0, 1].

  Each JPEG is decoded with Pillow as RGB, centre-cropped to a square and resized to
  `size` x `size` (bilinear).

  Args:
    utterance: an `Utterance` with frames, or a sequence of JPEG paths in time order.
    n: frames to return (repeated when the track has fewer).
    size: output height and width in pixels.

  Raises:
    VoxCelebError: no frames, or a JPEG cannot be decoded (the message names it).
  """
  from PIL import Image  # pylint: disable=import-outside-toplevel
  paths = utterance.frame_paths if isinstance(utterance, Utterance) else tuple(utterance)
  if not paths:
    key = utterance.key if isinstance(utterance, Utterance) else "these paths"
    raise VoxCelebError(f"{key} has no face frames: read a folder with a face layout "
                        "(read_voxceleb(..., faces='auto'); see voxceleb.LAYOUT)")
  out = np.empty((n, size, size, 3), np.float32)
  for i, k in enumerate(frame_indices(len(paths), n)):
    try:
      with Image.open(paths[k]) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(im, np.float32) / 255.0
    except (OSError, SyntaxError, ValueError) as err:
      raise VoxCelebError(f"cannot decode face frame {paths[k]!r} ({err}); replace or remove it, "
                          "or read the folder with check_frames='decode' to skip such frames") from err
  return out
