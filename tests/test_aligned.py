"""Aligned (piano roll, audio) clips: the embedded clips themselves, rolls that follow the
audio, crops that keep them together, and a conditioned WaveNet trained on 8 devices."""
import importlib.util

import numpy as np
import pytest

from mirjax.data import aligned, pipeline
from mirjax.errors import DataError


def _generate_config(words):
  spec = importlib.util.spec_from_file_location("generate_cfg", "configs/generate.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(words)


@pytest.fixture(scope="module")
def smoke(data_dir):
  c = _generate_config("wavenet,smoke")
  c.data.data_dir = data_dir
  return pipeline.DATASETS["aligned"].load(c.data, data_dir)


def test_the_aligned_clips_are_embedded_clips_without_drums(smoke, data_dir):
  from mirjax.data import embedded
  sources, info = smoke
  emb, emb_info = embedded.load("smoke", data_dir=data_dir, label="drums")
  assert info.sample_rate == emb_info.sample_rate and info.clip_samples == emb_info.clip_samples
  for split in ("train", "valid", "test"):
    by_piece = {}
    for i in range(len(emb[split])):
      ex = emb[split][i]
      by_piece.setdefault(int(ex["piece"]), []).append((ex["audio"], int(ex["label"])))
    no_drums = sum(lab == 0 for rows in by_piece.values() for _, lab in rows)
    assert len(sources[split]) == no_drums > 0
    for i in range(len(sources[split])):
      ex = sources[split][i]
      match = [lab for a, lab in by_piece[int(ex["piece"])] if np.array_equal(a, ex["audio"])]
      assert match == [0]  # the very clip the embedded dataset holds, and it has no drums


def test_the_roll_follows_the_audio(smoke):
  """Chroma of the audio against the roll's pitch classes: they agree best at lag 0."""
  librosa = pytest.importorskip("librosa")
  sources, info = smoke
  hop = 128
  scores = np.zeros(9)
  for i in range(len(sources["train"])):
    ex = sources["train"][i]
    assert ex["roll"].shape == (info.clip_samples // hop, 128) and set(np.unique(ex["roll"])) <= {0, 1}
    chroma = librosa.feature.chroma_stft(y=ex["audio"] / 32768.0, sr=info.sample_rate, n_fft=2048,
                                         hop_length=hop, center=True)[:, :ex["roll"].shape[0]].T
    pcs = np.zeros((ex["roll"].shape[0], 12))
    for p in range(128):
      pcs[:, p % 12] += ex["roll"][:, p]
    for k, lag in enumerate(range(-40, 41, 10)):  # frames of 8 ms
      a, b = (chroma[lag:], pcs[:len(pcs) - lag]) if lag >= 0 else (chroma[:lag], pcs[-lag:])
      scores[k] += np.sum(a * (b > 0)) / max(np.sum(a), 1e-9)
  assert np.argmax(scores) == 4, scores  # lag 0


def _ramp_source(n=3, frames=20, hop=16):
  """Audio whose every sample holds its frame number, and a roll with pitch (frame % 128) on."""
  rows = []
  for k in range(n):
    audio = (np.repeat(np.arange(frames), hop) + 1000 * k).astype(np.int16)
    roll = np.zeros((frames, 128), np.uint8)
    roll[np.arange(frames), np.arange(frames) % 128] = 1
    rows.append({"audio": audio, "roll": roll})

  class Src:
    def __len__(self):
      return n

    def __getitem__(self, i):
      return rows[i]
  return Src()


def test_crops_keep_the_roll_with_its_audio():
  src = _ramp_source()
  it = pipeline.train_iterator(src, local_batch=3, crop=5 * 16, seed=0, target=None)
  for _ in range(4):
    batch = next(it)
    assert batch["audio"].shape == (3, 80) and batch["roll"].shape == (3, 5, 128)
    frame = np.round(batch["audio"] * 32768.0).astype(int) % 1000  # the frame each sample is in
    for b in range(3):
      assert np.all(frame[b, ::16] == np.argmax(batch["roll"][b], axis=1))  # the roll of those very frames
  chunks = next(iter(pipeline.eval_batches(src, global_batch=3, crop=80, n_chunks=3, target=None)))
  frame = np.round(chunks["audio"] * 32768.0).astype(int) % 1000
  assert chunks["roll"].shape == (3, 3, 5, 128)
  np.testing.assert_array_equal(frame[:, :, ::16], np.argmax(chunks["roll"], axis=-1))
  with pytest.raises(DataError, match="multiple of 16"):
    next(pipeline.train_iterator(src, local_batch=3, crop=70, seed=0, target=None))


def test_a_conditioned_wavenet_trains_on_8_devices(tmp_path, data_dir):
  """With the mixture-of-logistics output (the softmax one trains in tests/test_generate.py)."""
  from mirjax.jobs import train
  c = _generate_config("wavenet,smoke")
  c.data.data_dir = data_dir
  c.task.output = "logistic_mixture"
  results = train.train_and_evaluate(c, str(tmp_path / "run"))
  assert results["devices"] == 8
  for split in ("valid", "test"):
    np.testing.assert_allclose(results[f"{split}/bits_per_sample"], results[f"{split}/loss"] / np.log(2), rtol=1e-6)
    assert 0 < results[f"{split}/bits_per_sample"] < 12.0


def test_the_roll_marks_the_frames_where_the_synthesiser_holds_a_key():
  """Frame f holds a pitch exactly when some sample of [f hop, (f + 1) hop) is between the
  note's key-down sample round(start sr) and its key-up sample max(down + 1, round(end sr))."""
  rng = np.random.default_rng(3)
  sr, hop, frames = 16000, 128, 80
  start = rng.uniform(0, 0.6, 40)
  notes = np.stack([start, start + rng.uniform(0.0001, 0.1, 40), rng.integers(40, 90, 40), np.full(40, 80.0)], 1)
  got = aligned.sample_roll(notes, sr, hop, frames)
  held = np.zeros((frames * hop, 128), bool)
  for s, e, p, _ in notes:
    down = int(round(s * sr))
    held[down:max(down + 1, int(round(e * sr))), int(p)] = True
  np.testing.assert_array_equal(got, held.reshape(frames, hop, 128).any(1))


def test_selection_minimises_bits_per_sample_and_token():
  from mirjax.jobs.train import lower_is_better
  assert lower_is_better("bits_per_sample") and lower_is_better("bits_per_token") and lower_is_better("perplexity")
