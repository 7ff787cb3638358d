"""The VoxCeleb reader on small folders in the real layouts, faults included, and the synthetic
audio-visual speakers it reads by default."""
import hashlib
import logging
import os

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mirjax.data import voxceleb
from mirjax.data.embedded import avspeakers
from mirjax.errors import DataError

SR = 16000
META = [("id10001", "Alice_A", "f", "Ireland", "dev"), ("id10002", "Bob_B", "m", "USA", "dev"),
        ("id10270", "Carol_C", "f", "UK", "test"), ("id10271", "Dan_D", "m", "India", "test")]
NAMES = {row[0]: row[1] for row in META}
FRAME_COLOURS = {"1.jpg": (255, 0, 0), "2.jpg": (0, 255, 0), "10.jpg": (0, 0, 255)}  # time order 1, 2, 10
# key -> what is wrong with it ("" for nothing)
UTTERANCES = {
    "id10001/vidAAAAAAAA/00001": "", "id10001/vidAAAAAAAA/00002": "",
    "id10002/vidBBBBBBBB/00001": "", "id10002/vidBBBBBBBB/00002": "rate",
    "id10270/vidCCCCCCCC/00001": "", "id10270/vidCCCCCCCC/00002": "",
    "id10270/vidCCCCCCCC/00003": "corrupt",
    "id10270/vidDDDDDDDD/00001": "one_bad_frame",
    "id10271/vidEEEEEEEE/00001": "", "id10271/vidEEEEEEEE/00002": "no_frames",
    "id10271/vidEEEEEEEE/00003": "only_bad_frame", "id10271/vidEEEEEEEE/00004": "empty",
    "id19999/vidZZZZZZZZ/00001": "",  # a speaker the meta csv lacks
}
TRIALS = """\
1 id10270/vidCCCCCCCC/00001.wav id10270/vidCCCCCCCC/00002.wav
0 id10270/vidCCCCCCCC/00001.wav id10271/vidEEEEEEEE/00001.wav
1 id10270/vidCCCCCCCC/00001.wav id10270/vidCCCCCCCC/00003.wav
0 id10270/vidDDDDDDDD/00001.wav id10271/vidEEEEEEEE/00002.wav
0 id10271/vidEEEEEEEE/00003.wav id10270/vidCCCCCCCC/00002.wav
1 id10271/vidEEEEEEEE/00001.wav id10271/vidEEEEEEEE/00009.wav
1 id10270/vidDDDDDDDD/00001.wav id10270/vidCCCCCCCC/00001.wav
2 id10270/vidCCCCCCCC/00001.wav
"""


def _tone(k: int, sr: int = SR) -> np.ndarray:
  t = np.arange(sr) / sr
  return (0.3 * np.sin(2 * np.pi * (200 + 50 * k) * t)).astype(np.float32)


def _jpeg(path, colour):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new("RGB", (40, 30), colour).save(path, quality=95)  # not square: load_frames crops


def _frame_dir(root, layout, key):
  sid, video, seg = key.split("/")
  if layout == "frames":
    return os.path.join(root, "frames", sid, video, seg)
  name = NAMES.get(sid, sid)
  return os.path.join(root, "unzippedIntervalFaces", "data", name, "1.6", video, str(int(seg)))


def make_folder(root, layout="unzippedIntervalFaces"):
  """A VoxCeleb1 folder with the faults of UTTERANCES, its meta csv and TRIALS."""
  with open(os.path.join(root, "vox1_meta.csv"), "w") as f:
    f.write("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n")
    f.writelines("\t".join(row) + "\n" for row in META)
  with open(os.path.join(root, "veri_test2.txt"), "w") as f:
    f.write(TRIALS)
  for k, (key, fault) in enumerate(UTTERANCES.items()):
    wav = os.path.join(root, "wav", key + ".wav")
    os.makedirs(os.path.dirname(wav), exist_ok=True)
    if fault == "corrupt":
      with open(wav, "wb") as f:
        f.write(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)))
    elif fault == "empty":
      open(wav, "wb").close()
    else:
      sf.write(wav, _tone(k, 8000 if fault == "rate" else SR), 8000 if fault == "rate" else SR)
    fdir = _frame_dir(root, layout, key)
    if fault == "no_frames":
      continue
    for name, colour in FRAME_COLOURS.items():
      if fault == "only_bad_frame" and name != "2.jpg":
        continue
      path = os.path.join(fdir, name)
      _jpeg(path, colour)
      if fault in ("one_bad_frame", "only_bad_frame") and name == "2.jpg":
        with open(path, "wb") as f:
          f.write(b"this is not a JPEG")
  return str(root)


@pytest.fixture(scope="module", params=["unzippedIntervalFaces", "frames"])
def folder(request, tmp_path_factory):
  return make_folder(tmp_path_factory.mktemp(request.param), request.param)


def test_reads_faulty_folder_skipping_and_listing(folder, caplog):
  with caplog.at_level(logging.WARNING):
    vox = voxceleb.read_voxceleb(folder)
  good = {k for k, fault in UTTERANCES.items()
          if fault in ("", "one_bad_frame") and not k.startswith("id19999")}
  assert {u.key for u in vox.utterances} == good
  layout = "frames" if os.path.isdir(os.path.join(folder, "frames")) else "unzippedIntervalFaces"
  assert vox.faces == layout and vox.sample_rate == SR
  rel = lambda key, name: os.path.relpath(os.path.join(_frame_dir(folder, layout, key), name), folder)
  expected = {
      "wav/id10002/vidBBBBBBBB/00002.wav": "wrong sample rate: 8000 Hz",
      "wav/id10270/vidCCCCCCCC/00003.wav": "not a decodable audio file",
      "wav/id10271/vidEEEEEEEE/00004.wav": "empty audio file",
      "wav/id10271/vidEEEEEEEE/00002.wav": "no readable face frame",
      "wav/id10271/vidEEEEEEEE/00003.wav": "no readable face frame",
      rel("id10270/vidDDDDDDDD/00001", "2.jpg"): "unreadable JPEG",
      rel("id10271/vidEEEEEEEE/00003", "2.jpg"): "unreadable JPEG",
      "wav/id19999": "not in vox1_meta.csv",
  }
  assert set(vox.skipped_files) == set(expected)
  for path, why in expected.items():
    assert why in vox.skipped_files[path], (path, vox.skipped_files[path])
  assert vox.skipped == len(expected)
  assert "wav/id10271/vidEEEEEEEE/00004.wav" in caplog.text and "skipped 8 file(s)" in caplog.text


def test_trials_naming_skipped_or_missing_files_are_dropped_and_reported(folder, caplog):
  with caplog.at_level(logging.WARNING):
    vox = voxceleb.read_voxceleb(folder)
  assert vox.trials["veri_test2.txt"] == (
      voxceleb.Trial(1, "id10270/vidCCCCCCCC/00001", "id10270/vidCCCCCCCC/00002"),
      voxceleb.Trial(0, "id10270/vidCCCCCCCC/00001", "id10271/vidEEEEEEEE/00001"),
      voxceleb.Trial(1, "id10270/vidDDDDDDDD/00001", "id10270/vidCCCCCCCC/00001"))
  dropped = vox.dropped_trials["veri_test2.txt"]
  assert dropped.count == 5 and len(dropped.first) == voxceleb.MAX_LISTED_TRIALS
  reasons = " ".join(dropped.first)
  for why in ("line 3:", "00003 skipped: not a decodable", "no readable face frame",
              "id10271/vidEEEEEEEE/00009 not found", "line 8:", "not 'label enrol test'"):
    assert why in reasons, why
  assert "veri_test2.txt: dropped 5 trial(s)" in caplog.text


def test_speakers_split_as_the_meta_csv_says(folder):
  vox = voxceleb.read_voxceleb(folder)
  assert vox.split("dev") == ("id10001", "id10002") and vox.split("test") == ("id10270", "id10271")
  assert vox.speakers["id10270"] == voxceleb.Speaker("id10270", "Carol_C", "f", "UK", "test")
  dev = {u.speaker for u in vox.utterances_of("dev")}
  test = {u.speaker for u in vox.utterances_of("test")}
  assert dev == {"id10001", "id10002"} and test == {"id10270", "id10271"}
  with pytest.raises(voxceleb.VoxCelebError, match="no speaker of Set 'valid'"):
    vox.utterances_of("valid")


def test_audio_only_keeps_segments_without_faces(folder):
  vox = voxceleb.read_voxceleb(folder, faces="none")
  keys = {u.key for u in vox.utterances}
  assert "id10271/vidEEEEEEEE/00002" in keys and "id10271/vidEEEEEEEE/00003" in keys
  assert all(u.frame_paths == () for u in vox.utterances) and vox.faces == ""
  assert len(vox.trials["veri_test2.txt"]) == 5  # the face-less trials come back; 3 still drop


def test_load_audio_and_evenly_spaced_frames(folder):
  vox = voxceleb.read_voxceleb(folder)
  by_key = vox.by_key()
  u = by_key["id10001/vidAAAAAAAA/00002"]
  audio = voxceleb.load_audio(u)
  assert audio.dtype == np.float32 and audio.shape == (SR,)
  np.testing.assert_allclose(audio, _tone(1), atol=1e-4)
  assert [os.path.basename(p) for p in u.frame_paths] == ["1.jpg", "2.jpg", "10.jpg"]
  frames = voxceleb.load_frames(u, n=3, size=16)
  assert frames.shape == (3, 16, 16, 3) and frames.dtype == np.float32
  assert 0.0 <= frames.min() and frames.max() <= 1.0
  colours = np.round(frames.mean(axis=(1, 2))).astype(int)  # pure red, green, blue
  np.testing.assert_array_equal(colours, np.eye(3, dtype=int))
  np.testing.assert_array_equal(voxceleb.frame_indices(3, 6), [0, 0, 1, 1, 2, 2])
  assert voxceleb.frame_indices(10, 1).tolist() == [5]
  # The segment whose second frame is unreadable keeps its first and last.
  kept = by_key["id10270/vidDDDDDDDD/00001"].frame_paths
  assert [os.path.basename(p) for p in kept] == ["1.jpg", "10.jpg"]


def test_m4a_gives_the_conversion_command(tmp_path):
  root = tmp_path / "vox2"
  m4a = root / "dev" / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a"
  m4a.parent.mkdir(parents=True)
  m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
  # vox2_meta.csv as distributed: comma-separated, every field padded with a space.
  (root / "vox2_meta.csv").write_text("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n"
                                      "id00012 ,n000012 ,m ,dev \n")
  wav = root / "wav" / "id00012" / "21Uxsk56VDQ" / "00001.wav"
  with pytest.raises(voxceleb.VoxCelebError, match="soundfile cannot decode") as err:
    voxceleb.read_voxceleb(root)
  msg = str(err.value)
  assert str(m4a) in msg and f"ffmpeg -i {m4a} -ac 1 -ar 16000 -acodec pcm_s16le {wav}" in msg
  assert "find dev/aac -name '*.m4a'" in msg
  with pytest.raises(voxceleb.VoxCelebError, match="ffmpeg -i"):
    voxceleb.load_audio(m4a)
  # Once converted, wav/ is read; an .m4a not converted yet is listed, not lost.
  wav.parent.mkdir(parents=True)
  sf.write(wav, _tone(0), SR)
  late = root / "dev" / "aac" / "id00012" / "21Uxsk56VDQ" / "00002.m4a"
  late.write_bytes(m4a.read_bytes())
  vox = voxceleb.read_voxceleb(root)
  assert [u.key for u in vox.utterances] == ["id00012/21Uxsk56VDQ/00001"] and vox.faces == ""
  assert vox.speakers["id00012"] == voxceleb.Speaker("id00012", "n000012", "m", "", "dev")
  assert list(vox.skipped_files) == ["dev/aac/id00012/21Uxsk56VDQ/00002.m4a"]
  assert "ffmpeg" in vox.skipped_files["dev/aac/id00012/21Uxsk56VDQ/00002.m4a"]


def test_missing_meta_or_wav_folder_says_what_is_needed(tmp_path):
  with pytest.raises(voxceleb.VoxCelebError, match="no wav/ folder"):
    voxceleb.read_voxceleb(tmp_path)
  (tmp_path / "wav").mkdir()
  with pytest.raises(voxceleb.VoxCelebError, match="vox1_meta.csv or vox2_meta.csv"):
    voxceleb.read_voxceleb(tmp_path)


# --- The synthetic default -------------------------------------------------------------------

SMOKE = avspeakers.CONFIGS["smoke"]


def _digest(folder) -> str:
  h = hashlib.sha256()
  for dirpath, dirs, files in sorted(os.walk(folder)):
    dirs.sort()
    for f in sorted(files):
      h.update(os.path.relpath(os.path.join(dirpath, f), folder).encode())
      with open(os.path.join(dirpath, f), "rb") as fh:
        h.update(fh.read())
  return h.hexdigest()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  return avspeakers.generate(tmp_path_factory.mktemp("avs") / "a", "smoke", seed=3, workers=1)


def test_synthetic_layout_reads_back(smoke):
  vox = voxceleb.read_voxceleb(smoke, check_frames="decode")
  assert vox.faces == "unzippedIntervalFaces" and not vox.skipped_files and not vox.dropped_trials
  assert len(vox.utterances) == SMOKE.identities * SMOKE.utterances
  dev, test = set(vox.split("dev")), set(vox.split("test"))
  assert len(test) == SMOKE.test_identities and len(dev) == SMOKE.identities - SMOKE.test_identities
  assert not dev & test
  assert not {u.speaker for u in vox.utterances_of("dev")} & test
  trials = vox.trials["veri_test2.txt"]
  labels = np.array([t.label for t in trials])
  assert len(trials) == 2 * SMOKE.trials_per_utterance * SMOKE.test_identities * SMOKE.utterances
  assert labels.sum() == len(trials) // 2
  speaker = lambda key: key.split("/")[0]
  assert {speaker(k) for t in trials for k in (t.enrol, t.test)} == test
  assert all((speaker(t.enrol) == speaker(t.test)) == bool(t.label) and t.enrol != t.test for t in trials)
  u = vox.utterances[0]
  audio = voxceleb.load_audio(u)
  assert SMOKE.seconds[0] * SR - 1 <= len(audio) <= SMOKE.seconds[1] * SR + 1
  assert 0.01 < float(np.sqrt(np.mean(audio ** 2))) < 0.2
  assert len(u.frame_paths) == SMOKE.frames
  assert voxceleb.load_frames(u, n=2, size=SMOKE.image_size).std() > 0.05
  with open(os.path.join(smoke, "README.txt")) as f:
    assert "SYNTHETIC" in f.read()


def test_synthetic_data_is_deterministic_for_a_seed(smoke, tmp_path):
  again = avspeakers.generate(tmp_path / "b", "smoke", seed=3, workers=1)
  assert _digest(again) == _digest(smoke)
  small = SMOKE._replace(identities=4, test_identities=2, utterances=2)
  assert _digest(avspeakers.generate(tmp_path / "c", small, seed=3, workers=1)) != \
      _digest(avspeakers.generate(tmp_path / "d", small, seed=4, workers=1))


LATENT = avspeakers.Size(24, 4, 4, (2, 2), (1.0, 1.0), 2, 48, 1)  # 2 videos of 2 utterances each


def _face_width(frame: np.ndarray) -> float:
  """Head width in pixels on the cheek rows (between nose and mouth, averaged): from the middle,
  the first colour edge on each side that is at least 40 % of that side's strongest."""
  n = frame.shape[0]
  row = frame[int(0.58 * n):int(0.62 * n) + 1].mean(axis=0)
  edges = np.linalg.norm(np.diff(row, axis=0), axis=1)
  mid, margin = n // 2, int(0.15 * n)
  right, left = edges[mid + margin:], edges[:mid - margin][::-1]
  first = lambda side: int(np.argmax(side >= 0.4 * side.max()))
  return float(2 * margin + 1 + first(right) + first(left))


def _widths(vox) -> np.ndarray:
  width = {}
  for u in vox.utterances:
    width.setdefault(u.speaker, []).extend(_face_width(fr) for fr in voxceleb.load_frames(u, 2, 48))
  return np.array([np.mean(width[s]) for s in sorted(width)])


def _voices(vox):
  """(per-identity log of median f0, per-utterance mean log-mel over bands minus its mean
  (level-free), speaker and video of each utterance)."""
  import librosa  # pylint: disable=import-outside-toplevel
  f0, mels, who = {}, [], []
  for u in vox.utterances:
    audio = voxceleb.load_audio(u)
    track = librosa.yin(audio, fmin=60, fmax=400, sr=SR, frame_length=1024)
    rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0][:len(track)]
    f0.setdefault(u.speaker, []).append(np.median(track[rms > np.median(rms)]))
    mel = np.log(librosa.feature.melspectrogram(y=audio, sr=SR, n_fft=512, hop_length=160, n_mels=40)
                 + 1e-6).mean(axis=1)
    mels.append(mel - mel.mean())
    who.append(u.key.split("/")[:2])
  return np.log([np.median(f0[s]) for s in sorted(f0)]), np.array(mels), np.array(who)


@pytest.fixture(scope="module")
def latent_pair(tmp_path_factory):
  """The LATENT data twice from one seed: voice and face sharing sex and age, and not."""
  root = tmp_path_factory.mktemp("latent")
  read = lambda folder: voxceleb.read_voxceleb(folder, check_frames="none")
  return (read(avspeakers.generate(root / "a", LATENT, seed=0, workers=1)),
          read(avspeakers.generate(root / "b", LATENT, seed=0, coupling=0.0, workers=1)))


def test_voice_and_face_share_a_latent(latent_pair):
  coupled, apart = latent_pair
  assert [u.key for u in coupled.utterances] == [u.key for u in apart.utterances]
  np.testing.assert_array_equal(voxceleb.load_audio(coupled.utterances[5]),
                                voxceleb.load_audio(apart.utterances[5]))
  log_f0 = _voices(coupled)[0]  # the voices are the same in both
  r = np.corrcoef(log_f0, _widths(coupled))[0, 1]
  r_apart = np.corrcoef(log_f0, _widths(apart))[0, 1]
  # Low voices have broad faces when sex is shared; with faces drawn apart, no such link.
  assert r < -0.45, r
  assert abs(r_apart) < 0.35 and r < r_apart - 0.3, (r, r_apart)


def test_voices_differ_between_identities(latent_pair):
  _, mels, who = _voices(latent_pair[0])
  z = (mels - mels.mean(0)) / mels.std(0)
  d = np.linalg.norm(z[:, None] - z[None], axis=2)
  same = who[:, None, 0] == who[None, :, 0]
  other_video = who[:, None, 1] != who[None, :, 1]
  # Another video of the same identity (other channel, other words) beats another identity.
  within, across = d[same & other_video].mean(), d[~same].mean()
  assert within < 0.93 * across, (within, across)
  # The nearest utterance of another video is of the same identity far above chance (2 in 94).
  nearest = np.argmin(np.where(other_video, d, np.inf), axis=1)
  assert np.mean(who[nearest, 0] == who[:, 0]) > 0.1


def test_ensure_builds_once_into_the_cache(tmp_path):
  folder = avspeakers.ensure("smoke", data_dir=str(tmp_path), seed=1, workers=1)
  assert folder == avspeakers.cache_folder("smoke", str(tmp_path), seed=1)
  stamp = os.stat(os.path.join(folder, "vox1_meta.csv")).st_mtime_ns
  vox = avspeakers.load("smoke", data_dir=str(tmp_path), seed=1, check_frames="none")
  assert os.stat(os.path.join(folder, "vox1_meta.csv")).st_mtime_ns == stamp  # read, not rebuilt
  assert vox.root == folder and len(vox.utterances) == SMOKE.identities * SMOKE.utterances
  assert os.listdir(os.path.dirname(folder)) == [os.path.basename(folder)]  # no half-written folder left
  with pytest.raises(DataError, match="unknown avspeakers config"):
    avspeakers.ensure("huge", data_dir=str(tmp_path))


def test_mouth_opens_with_the_speech(latent_pair):
  """How dark the mouth region is (open mouth) follows the audio's loudness at each frame's time,
  within each identity (so that faces' own differences do not count)."""
  dark, loud, who = [], [], []
  for u in latent_pair[0].utterances:
    audio, n = voxceleb.load_audio(u), len(u.frame_paths)
    frames = voxceleb.load_frames(u, n, 48)
    for k in range(n):
      t = int((k + 0.5) / n * len(audio))
      loud.append(np.log(np.sqrt(np.mean(audio[max(0, t - 320):t + 320] ** 2)) + 1e-4))
      mouth = frames[k, 30:37, 19:29].mean(axis=-1)  # where the mouth is, give or take the pose
      dark.append(np.median(mouth) - mouth.min())
      who.append(u.speaker)
  dark, loud, who = np.array(dark), np.array(loud), np.array(who)
  for s in set(who):
    dark[who == s] -= dark[who == s].mean()
    loud[who == s] -= loud[who == s].mean()
  assert np.corrcoef(dark, loud)[0, 1] > 0.3
