"""`python -m mirjax.tag`: whole files in sliding windows, formats, bad files, bounded memory."""
import csv
import io
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from mirjax.data import audio_io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(data_dir):
  return dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
              XLA_FLAGS="--xla_force_host_platform_device_count=8")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
  """A smoke-trained flagship (crops of 1 s at 16 kHz)."""
  w = str(tmp_path_factory.mktemp("tagged"))
  p = subprocess.run([sys.executable, "-m", "mirjax.main", "--config=configs/sincmodnet.py:smoke",
                      f"--workdir={w}"], cwd=ROOT, env=_env(data_dir), capture_output=True,
                     text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  return w


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("to_tag")
  rng = np.random.default_rng(0)
  sf.write(d / "song.wav", (0.2 * rng.standard_normal(int(22050 * 4.3))).astype(np.float32), 22050)
  sf.write(d / "short.mp3", (0.2 * rng.standard_normal(8000)).astype(np.float32), 16000, format="MP3")
  (d / "corrupt.flac").write_bytes(rng.bytes(3000))
  return {k: str(d / k) for k in ("song.wav", "short.mp3", "corrupt.flac")} | {
      "missing.wav": str(d / "missing.wav")}


def _tag(workdir, data_dir, args):
  return subprocess.run([sys.executable, "-m", "mirjax.tag", f"--workdir={workdir}", *args],
                        cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=300)


def test_tags_whole_files_and_goes_on_after_bad_ones(workdir, data_dir, files):
  p = _tag(workdir, data_dir, ["--format=json", "--top_k=3", files["song.wav"],
                               files["missing.wav"], files["corrupt.flac"], files["short.mp3"]])
  assert p.returncode == 1  # some files could not be read
  assert "missing.wav" in p.stderr and "not found" in p.stderr
  assert "corrupt.flac" in p.stderr and "not a decodable" in p.stderr
  out = json.loads(p.stdout)
  assert [r["file"] for r in out] == [files["song.wav"], files["short.mp3"]]
  song, short = out
  # 4.3 s at 1 s windows, hop 0.5 s: starts 0, 0.5, ..., 3.0, then one window ending at 4.3 s.
  assert song["windows"] == 8 and song["seconds"] == pytest.approx(4.3, abs=1e-3)
  assert short["windows"] == 1  # shorter than a window: one zero-padded window
  assert short["seconds"] == pytest.approx(0.5, abs=0.01)  # its own length, not the window's
  assert "short.mp3 is 0.50 s long, shorter than the model's 1.00 s window" in p.stderr
  # Each file's printed tags are the 3 best of its mean window scores (1 s windows every
  # 0.5 s plus one ending at the end; the short file zero-padded to one window).
  from mirjax.tag import Tagger
  tagger = Tagger(workdir)
  for r in out:
    scores = [t["score"] for t in r["tags"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    audio = audio_io.load_audio(r["file"], 16000)
    audio = np.pad(audio, (0, max(0, 16000 - len(audio))))
    starts = sorted(set(range(0, len(audio) - 16000 + 1, 8000)) | {len(audio) - 16000})
    mean = tagger.score_windows(np.stack([audio[s:s + 16000] for s in starts])).mean(axis=0)
    printed = [tagger.labels.index(t["tag"]) for t in r["tags"]]
    np.testing.assert_allclose(scores, mean[printed], rtol=1e-5, atol=1e-6)
    assert np.delete(mean, printed).max() <= min(scores) + 1e-6  # no tag left out scores higher


def test_scores_are_the_mean_over_windows(workdir, files):
  from mirjax.tag import Tagger
  tagger = Tagger(workdir)
  scores, n, _ = tagger.score_file(files["song.wav"], hop=8000, batch_windows=3)
  audio = audio_io.load_audio(files["song.wav"], 16000)
  starts = list(range(0, len(audio) - 16000 + 1, 8000)) + [len(audio) - 16000]
  windows = np.stack([audio[s:s + 16000] for s in starts])
  np.testing.assert_allclose(scores, tagger.score_windows(windows).mean(axis=0), rtol=1e-5, atol=1e-6)
  assert n == len(starts)


def test_csv_and_text_formats(workdir, data_dir, files):
  p = _tag(workdir, data_dir, ["--format=csv", "--top_k=2", files["song.wav"]])
  assert p.returncode == 0, p.stderr[-2000:]
  rows = list(csv.DictReader(io.StringIO(p.stdout)))
  assert [r["rank"] for r in rows] == ["1", "2"] and rows[0]["file"] == files["song.wav"]
  p = _tag(workdir, data_dir, [files["song.wav"]])
  assert p.returncode == 0 and files["song.wav"] in p.stdout and "windows" in p.stdout


@pytest.mark.parametrize("flag, says", [("--hop_seconds=-1", "--hop_seconds must be a positive"),
                                        ("--hop_seconds=0", "--hop_seconds must be a positive"),
                                        ("--batch_windows=0", "batch_windows"),
                                        ("--top_k=-2", "top_k")])
def test_bad_flags_are_refused_in_one_line(workdir, data_dir, files, flag, says):
  p = _tag(workdir, data_dir, [flag, files["song.wav"]])
  assert p.returncode != 0 and says in p.stderr and "Traceback" not in p.stderr
  assert p.stdout == ""


def test_scores_the_configured_prediction_not_the_first_branch():
  """A multi-branch model is scored by the mean of its task.predict_from branches, as its
  own evaluation scores it (the first branch alone was scored before)."""
  from mirjax.tag import Tagger
  tagger = object.__new__(Tagger)
  tagger.state = None
  tagger.branches = ("joint", "logmel")
  outputs = {"cqt": np.full((2, 3), 0.9), "joint": np.full((2, 3), 0.2), "logmel": np.full((2, 3), 0.4)}
  tagger._score = lambda state, batch: outputs
  np.testing.assert_allclose(tagger.score_windows(np.zeros((2, 10))), np.full((2, 3), 0.3))


def test_no_checkpoint_is_a_clear_error(tmp_path, data_dir, files):
  p = _tag(str(tmp_path), data_dir, [files["song.wav"]])
  assert p.returncode != 0 and "no checkpoint" in p.stderr and "mirjax.main" in p.stderr


def test_stream_windows_memory_is_bounded_by_a_block(tmp_path):
  """A 20-minute file streams in blocks: peak traced memory stays far below the file's
  decoded size (77 MB of float32 at 16 kHz)."""
  path = tmp_path / "long.wav"
  with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
    for _ in range(20):
      f.write((0.1 * np.random.default_rng(1).standard_normal(16000 * 60)).astype(np.float32))
  tracemalloc.start()
  n = sum(1 for _ in audio_io.stream_windows(path, 16000, 16000 * 3, 16000 * 3, block_seconds=20))
  _, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  assert n == 400
  assert peak < 12e6, peak


def test_stream_windows_equal_the_resampled_file(tmp_path):
  path = tmp_path / "x.wav"
  sf.write(path, (0.1 * np.random.default_rng(2).standard_normal(22050 * 7 + 123)).astype(np.float32), 22050)
  ref = audio_io.load_audio(path, 16000)
  for window, hop, block in [(16000, 8000, 1.0), (16000, 16000, 0.37), (300000, 1000, 2.0)]:
    for start, w, _ in audio_io.stream_windows(path, 16000, window, hop, block_seconds=block):
      want = np.pad(ref[start:start + window], (0, max(0, start + window - len(ref))))
      np.testing.assert_allclose(w, want, atol=1e-6)


def test_decompose_draws_the_modulation_decomposition(workdir, data_dir, tmp_path):
  """A 440 Hz tone amplitude-modulated at 2 Hz: the decomposition's strongest modulation
  panel (time-variance in the tone's acoustic band) is the filter centred nearest 2 Hz, and
  the command writes one PNG."""
  from mirjax import decompose
  t = np.arange(16000 * 4) / 16000
  tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 2.0 * t))).astype(np.float32)
  parts = decompose.decomposition(workdir, tone)
  dec, band_hz = parts["decomposition"], parts["band_hz"]
  assert dec.shape == (4 * 16000 // 256, len(band_hz), len(parts["mod_centre_hz"]))
  band = int(np.argmin(np.abs(band_hz - 440.0)))
  inner = dec[40:-40, band]  # away from the edges
  strongest = int(np.argmax(inner.var(axis=0)))
  assert strongest == int(np.argmin(np.abs(parts["mod_centre_hz"] - 2.0))), parts["mod_centre_hz"]
  path = tmp_path / "am.wav"
  sf.write(path, tone, 16000)
  out = tmp_path / "dec.png"
  p = subprocess.run([sys.executable, "-m", "mirjax.decompose", f"--workdir={workdir}", "--seconds=3",
                      f"--out={out}", str(path)], cwd=ROOT, env=_env(data_dir), capture_output=True,
                     text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-2000:]
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  p = subprocess.run([sys.executable, "-m", "mirjax.decompose", f"--workdir={workdir}", "--offset=60",
                      str(path)], cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=300)
  assert p.returncode != 0 and "past the end" in p.stderr


def test_modulation_rate_analysis_scores_each_rate(workdir, data_dir, monkeypatch):
  """At rate 0 (every frame) the analysis reproduces the run's own test ROC-AUC; lower
  rates score the same model with each band held, and the table has every tag."""
  import ml_collections
  from mirjax.jobs import modulation_rates
  monkeypatch.setenv("MIRJAX_DATA_DIR", data_dir)
  per_rate = modulation_rates.score_at_rates(workdir, (0.0, 1.0))
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert per_rate[0.0]["roc_auc"] == pytest.approx(results["test/roc_auc"], abs=1e-6)
  assert per_rate[1.0]["roc_auc"] != per_rate[0.0]["roc_auc"]
  tags = list(per_rate[0.0]["per_tag_roc_auc"])
  rows, md = modulation_rates.table(per_rate, tags)
  assert [r["tag"] for r in rows] == ["macro ROC-AUC"] + tags
  assert "every frame" in md and "1 x bandwidth" in md
  config = ml_collections.ConfigDict({"analysis": {"trained": "/no/such/run"}})
  with pytest.raises(ValueError, match="not a folder"):
    modulation_rates._trained(config, "/tmp")
