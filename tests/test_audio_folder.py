"""A user's folder of tagged audio: decode, resample, clip; bad input skipped and counted."""
import logging
import os
import sys

import numpy as np
import pytest
import soundfile as sf

from mirjax.data import audio_io
from mirjax.data import folder as folder_lib
from mirjax.data.builders import audio_folder

from helpers import assert_audio_stored_as_int16_bytes

SR = 16000
CLIP_SECONDS = 1.0


def tone(freq, sr, seconds, amps=(0.5,)):
  """(frames, channels) sine; channel c has amplitude amps[c]."""
  t = np.arange(int(round(sr * seconds))) / sr
  return np.stack([a * np.sin(2 * np.pi * freq * t) for a in amps], axis=1)


def peak_hz(x, sr):
  return np.argmax(np.abs(np.fft.rfft(x))) * sr / len(x)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("my_audio")
  (root / "sub").mkdir()
  sf.write(root / "a.wav", tone(440, 22050, 2.5, amps=(0.4, 0.2)), 22050)  # stereo, resampled
  sf.write(root / "b.wav", tone(1000, 16000, 1.2), 16000)  # mono, native rate
  sf.write(root / "sub" / "c.flac", tone(300, 22050, 3.0), 22050)
  sf.write(root / "short.wav", tone(500, 16000, 0.3), 16000)  # under half a clip
  (root / "empty.wav").write_bytes(b"")
  (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(4000))
  (root / "tags.csv").write_text(
      "path,tags,split\n"
      "a.wav,rock;guitar,train\n"
      "b.wav,jazz,train\n"
      "sub/c.flac,rock; piano,test\n"
      "short.wav,jazz,valid\n"
      "empty.wav,rock,valid\n"
      "corrupt.wav,jazz,train\n"
      "missing.wav,pop,test\n")
  return root


class Records(logging.Handler):

  def __init__(self):
    super().__init__(logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def built(folder, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds_folder")
  records, logger = Records(), logging.getLogger(audio_folder.__name__)
  logger.addHandler(records)
  try:
    sources, info = folder_lib.load_folder(folder, data_dir, sample_rate=SR,
                                           clip_seconds=CLIP_SECONDS)
  finally:
    logger.removeHandler(records)
  return sources, info, "\n".join(records.messages), data_dir


def examples(source):
  return [source[i] for i in range(len(source))]


def test_bad_files_are_skipped_counted_and_named(built):
  _, info, warning, _ = built
  from mirjax.data.info import Info
  assert type(info) is Info  # the one type every loader returns
  assert info.skipped == 3
  assert list(info.skipped_files) == ["corrupt.wav", "empty.wav", "missing.wav"]
  assert "not a decodable audio file" in info.skipped_files["corrupt.wav"]
  assert "empty" in info.skipped_files["empty.wav"]
  assert "not found" in info.skipped_files["missing.wav"]
  assert info.too_short_files == ("short.wav",)
  assert "skipped 3" in warning
  for name in ("corrupt.wav", "empty.wav", "missing.wav", "short.wav"):
    assert name in warning


def test_skips_are_stored_with_the_dataset(built):
  _, _, _, data_dir = built
  (meta_path,) = list(data_dir.glob(f"mirjax_audio_folder/*/{audio_folder.AudioFolder.VERSION}/metadata.json"))
  text = meta_path.read_text()
  assert '"skipped": 3' in text and "corrupt.wav" in text


def test_clip_counts_and_splits(built):
  sources, info, _, _ = built
  # a: 2.5 s -> 2 clips + a half clip (padded); b: 1.2 s -> 1 clip (0.2 s dropped); c: 3 clips.
  # valid holds only a too-short file and an empty one, so it has no clip and is absent.
  assert set(sources) == {"train", "test"}
  assert info.num_examples == {"train": 4, "test": 3}
  assert {s: len(src) for s, src in sources.items()} == info.num_examples
  assert info.clip_samples == int(SR * CLIP_SECONDS) and info.sample_rate == SR
  files = [info.files[int(ex["file_index"])] for ex in examples(sources["train"])]
  assert sorted(files) == ["a.wav", "a.wav", "a.wav", "b.wav"]
  for ex in examples(sources["train"]) + examples(sources["test"]):
    assert ex["audio"].dtype == np.int16 and ex["audio"].shape == (info.clip_samples,)
    assert ex["tags"].dtype == np.uint8 and ex["file_index"].dtype == np.int32


def test_resampled_tone_and_downmix(built):
  sources, info, _, _ = built
  by_file = {}
  for split in sources.values():
    for ex in examples(split):
      by_file.setdefault(info.files[int(ex["file_index"])], {})[int(ex["clip_index"])] = ex["audio"]
  assert sorted(by_file["a.wav"]) == [0, 1, 2] and sorted(by_file["sub/c.flac"]) == [0, 1, 2]
  for path, freq in (("a.wav", 440), ("b.wav", 1000), ("sub/c.flac", 300)):
    assert peak_hz(by_file[path][0].astype(np.float32), SR) == pytest.approx(freq, abs=1.0)
  a0 = by_file["a.wav"][0].astype(np.float32) / 32768
  assert np.abs(a0).max() == pytest.approx(0.3, rel=0.02)  # mean of 0.4 and 0.2 amplitudes
  last = by_file["a.wav"][2]  # 0.5 s of tone, then zero padding
  assert np.abs(last[:7900]).max() > 9000 and not last[8100:].any()


def test_audio_is_stored_as_int16_bytes_and_read_back_unchanged(built, folder):
  """Each clip is stored as its raw int16 bytes (not widened to int64) and read back as
  written: b.wav (mono, 16-bit, at the dataset's rate) gives its own first second of samples."""
  sources, info, _, data_dir = built
  (version_dir,) = data_dir.glob(f"mirjax_audio_folder/*/{audio_folder.AudioFolder.VERSION}")
  stored = assert_audio_stored_as_int16_bytes(version_dir, sources)
  assert all(a.shape == (info.clip_samples,) for clips in stored.values() for a in clips)
  b = [a for a, ex in zip(stored["train"], examples(sources["train"]))
       if info.files[int(ex["file_index"])] == "b.wav"]
  pcm, _ = sf.read(folder / "b.wav", dtype="int16")
  assert len(b) == 1
  np.testing.assert_array_equal(b[0], pcm[:info.clip_samples])


def test_tags_are_multi_hot_over_the_sorted_vocabulary(built):
  sources, info, _, _ = built
  assert info.tag_names == ("guitar", "jazz", "piano", "pop", "rock")
  want = {"a.wav": {"rock", "guitar"}, "b.wav": {"jazz"}, "sub/c.flac": {"rock", "piano"}}
  for split in sources.values():
    for ex in examples(split):
      got = {t for t, on in zip(info.tag_names, ex["tags"]) if on}
      assert got == want[info.files[int(ex["file_index"])]]


def test_cache_is_reused_and_a_changed_folder_gets_a_new_config(built, folder):
  _, info, _, data_dir = built
  shards = sorted(data_dir.glob(f"mirjax_audio_folder/*/{audio_folder.AudioFolder.VERSION}/*.array_record*"))
  stamps = [p.stat().st_mtime_ns for p in shards]
  _, again = folder_lib.load_folder(folder, data_dir, sample_rate=SR, clip_seconds=CLIP_SECONDS)
  assert again == info
  assert [p.stat().st_mtime_ns for p in shards] == stamps
  name = audio_folder.config_for_folder(folder, SR, CLIP_SECONDS).name
  assert audio_folder.config_for_folder(folder, 22050, CLIP_SECONDS).name != name
  sf.write(folder / "b.wav", tone(1000, 16000, 1.3), 16000)
  assert audio_folder.config_for_folder(folder, SR, CLIP_SECONDS).name != name


def test_no_tensorflow_is_imported(built):
  assert "tensorflow" not in sys.modules


def test_load_audio_reads_and_resamples(folder):
  x = audio_io.load_audio(folder / "a.wav", SR)
  assert x.dtype == np.float32 and x.shape == (40000,)
  assert peak_hz(x, SR) == pytest.approx(440, abs=0.5)
  both = audio_io.load_audio(folder / "a.wav", 22050, mono=False)
  assert both.shape == (2, 55125)
  np.testing.assert_allclose(np.abs(both).max(axis=1), [0.4, 0.2], rtol=1e-3)
  assert audio_io.audio_info(folder / "sub" / "c.flac") == (22050, 66150, 1, "")


@pytest.mark.parametrize("name, message", [
    ("missing.wav", "audio file not found"),
    ("empty.wav", "empty audio file (0 bytes)"),
    ("corrupt.wav", "not a decodable audio file"),
    ("sub", "not a file"),
])
def test_load_audio_errors_name_the_file_and_the_cause(folder, name, message):
  for read in (lambda p: audio_io.load_audio(p, SR), audio_io.audio_info):
    with pytest.raises(audio_io.AudioReadError) as err:
      read(folder / name)
    assert message in str(err.value) and os.fspath(folder / name) in str(err.value)
  assert isinstance(err.value, ValueError)


def test_load_audio_rejects_no_samples_and_bad_rates(tmp_path):
  path = tmp_path / "silent.wav"
  sf.write(path, np.zeros((0, 1)), SR)
  with pytest.raises(audio_io.AudioReadError, match="no samples"):
    audio_io.load_audio(path, SR)
  sf.write(path, tone(440, SR, 0.1), SR)
  for rate in (0, -16000, 16000.5):
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
      audio_io.load_audio(path, rate)


def test_missing_folder_or_tags_csv_is_a_clear_error(tmp_path):
  with pytest.raises(audio_folder.FolderError, match="audio folder not found") as err:
    folder_lib.load_folder(tmp_path / "nowhere", tmp_path / "tfds")
  assert "tags.csv" in str(err.value) and "Expected layout" in str(err.value)
  with pytest.raises(audio_folder.FolderError, match="no tags.csv"):
    folder_lib.load_folder(tmp_path, tmp_path / "tfds")
  (tmp_path / "tags.csv").write_text("file,labels\na.wav,rock\n")
  with pytest.raises(audio_folder.FolderError, match="columns 'path' and 'tags'"):
    folder_lib.load_folder(tmp_path, tmp_path / "tfds")
  (tmp_path / "tags.csv").write_text("path,tags,split\na.wav,rock,dev\n")
  with pytest.raises(audio_folder.FolderError, match="line 2: split 'dev'"):
    folder_lib.load_folder(tmp_path, tmp_path / "tfds")
  (tmp_path / "tags.csv").write_text("path,tags\na.wav,rock\na.wav,jazz\n")
  with pytest.raises(audio_folder.FolderError, match="listed twice"):
    folder_lib.load_folder(tmp_path, tmp_path / "tfds")


def test_a_folder_with_no_readable_file_is_a_clear_error(tmp_path):
  (tmp_path / "x.wav").write_bytes(b"")
  (tmp_path / "tags.csv").write_text("path,tags\nx.wav,rock\n")
  with pytest.raises(audio_folder.FolderError, match="gave a clip") as err:
    folder_lib.load_folder(tmp_path, tmp_path / "tfds")
  assert "x.wav: empty audio file" in str(err.value)


def test_hash_split_is_deterministic_and_80_10_10(tmp_path):
  paths = [f"track_{i:04d}.wav" for i in range(2000)]
  (tmp_path / "tags.csv").write_text("path,tags\n" + "".join(f"{p},rock\n" for p in paths))
  rows = audio_folder.read_tags_csv(tmp_path)
  assert [r.split for r in rows] == [audio_folder.hash_split(p) for p in paths]
  share = {s: sum(r.split == s for r in rows) / len(rows) for s in audio_folder.SPLITS}
  assert share["train"] == pytest.approx(0.8, abs=0.03)
  assert share["valid"] == pytest.approx(0.1, abs=0.02)
  assert share["test"] == pytest.approx(0.1, abs=0.02)


def test_cut_clips_pads_a_half_clip_and_drops_less():
  x = np.arange(1, 26, dtype=np.float32)
  clips = audio_folder.cut_clips(x, 10)  # 25 samples: 2 clips + 5 (= half) padded
  assert clips.shape == (3, 10) and clips[2, 4] == 25 and not clips[2, 5:].any()
  assert audio_folder.cut_clips(x[:24], 10).shape == (2, 10)  # 4 < half: dropped
  assert audio_folder.cut_clips(x[:4], 10).shape == (0, 10)


def test_truncated_and_untagged_files_are_used_and_named(tmp_path):
  """A WAV cut short by a failed copy is used as far as it goes and an untagged row is an
  all-negative example, and the build says both (it said neither before)."""
  root = tmp_path / "cut"
  root.mkdir()
  sf.write(root / "whole.wav", tone(440, SR, 2.0), SR, subtype="PCM_16")
  sf.write(root / "full.wav", tone(300, SR, 3.0), SR, subtype="PCM_16")
  data = (root / "full.wav").read_bytes()
  (root / "cut.wav").write_bytes(data[:44 + 2 * int(1.6 * SR)])  # header + 1.6 s of 3 s
  (root / "quiet.wav").write_bytes((root / "whole.wav").read_bytes())
  (root / "tags.csv").write_text("path,tags,split\nwhole.wav,a,train\ncut.wav,b,train\n"
                                 "quiet.wav,,train\n")
  assert "should be" in sf.info(root / "cut.wav").extra_info  # libsndfile saw the cut
  assert audio_io.audio_info(root / "cut.wav").truncated.startswith("truncated: its header declares")
  assert audio_io.audio_info(root / "whole.wav").truncated == ""
  records, logger = Records(), logging.getLogger(audio_folder.__name__)
  logger.addHandler(records)
  try:
    sources, info = folder_lib.load_folder(root, tmp_path / "tfds", sample_rate=SR,
                                           clip_seconds=CLIP_SECONDS)
  finally:
    logger.removeHandler(records)
  warning = "\n".join(records.messages)
  assert list(info.truncated_files) == ["cut.wav"] and "1.60 s of it are used" in info.truncated_files["cut.wav"]
  assert info.untagged_files == ("quiet.wav",)
  assert "1 truncated file(s)" in warning and "cut.wav" in warning
  assert "1 file(s) have no tag" in warning and "quiet.wav" in warning
  # used: whole 2 clips, cut 1.6 s -> 2 clips (the second half-padded), quiet 2 clips
  assert info.num_examples == {"train": 6}
  quiet = [ex for ex in examples(sources["train"]) if info.files[int(ex["file_index"])] == "quiet.wav"]
  assert len(quiet) == 2 and all(ex["tags"].sum() == 0 for ex in quiet)


def test_a_build_waits_for_one_in_progress_and_clears_what_a_killed_build_left(folder, tmp_path):
  """Two runs building one dataset in one data dir: the second waits for the first's lock,
  then reads what the first built, without building it again; an `incomplete.*` folder of
  a killed build is removed by the next build."""
  import fcntl
  import threading

  import tensorflow_datasets as tfds

  from mirjax.data import prepare

  make = lambda: audio_folder.make_builder(folder, tmp_path, SR, CLIP_SECONDS)
  dataset_dir = os.path.dirname(os.fspath(make().data_dir))
  os.makedirs(dataset_dir, exist_ok=True)
  orphan = os.path.join(dataset_dir, f"incomplete.ABC123_{audio_folder.AudioFolder.VERSION}")
  os.makedirs(orphan)
  open(os.path.join(orphan, "part.array_record"), "w").close()
  result = {}
  with open(os.path.join(dataset_dir, prepare.LOCK_NAME), "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # a first run is building
    waiting = threading.Thread(target=lambda: result.update(
        zip(("sources", "info"), folder_lib.load_folder(folder, tmp_path, SR, CLIP_SECONDS))))
    waiting.start()
    waiting.join(2.0)
    assert waiting.is_alive() and not result  # the second run waits
    make().download_and_prepare(  # the first run's build, then its lock released
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(folder)))
    built = {p: os.path.getmtime(p) for p in sorted(glob_files(dataset_dir)) if "incomplete" not in p}
    fcntl.flock(lock, fcntl.LOCK_UN)
  waiting.join(60)
  assert not waiting.is_alive()
  assert result["info"].num_examples == {"train": 4, "test": 3}
  assert not os.path.exists(orphan)
  assert {p: os.path.getmtime(p) for p in built} == built  # read, not built again


def glob_files(root):
  for d, _, names in os.walk(root):
    for n in names:
      yield os.path.join(d, n)
