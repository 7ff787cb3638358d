"""The generation measures against references, and the whole generate pipeline on 8 devices."""
import importlib.util
import json
import os

import numpy as np
import pytest

from mirjax.data import aligned, symbolic
from mirjax.evaluation import generation as measures


def test_frame_f1_is_scikit_learns():
  metrics = pytest.importorskip("sklearn.metrics")
  rng = np.random.default_rng(0)
  pred, ref = rng.random((50, 12)) < 0.3, rng.random((50, 12)) < 0.2
  got = measures.frame_f1(pred, ref)
  want = metrics.precision_recall_fscore_support(ref.ravel(), pred.ravel(), average="binary")
  np.testing.assert_allclose([got["precision"], got["recall"], got["f1"]], want[:3], rtol=1e-12)
  assert measures.frame_f1(np.zeros((3, 12)), np.zeros((3, 12)))["f1"] == 1.0


def test_a_rendered_roll_is_heard_in_its_pitch_classes():
  """The synthesiser playing a C major arpeggio then a rest: the chroma hears C, E and G where
  they sound, and nothing in the silence; a roll shifted by a tone scores far lower."""
  from mirjax.jobs.generate import render
  sr, hop = 16000, 128
  notes = np.array([[0.0, 0.5, 60, 90], [0.5, 1.0, 64, 90], [1.0, 1.5, 67, 90]])
  audio = render(notes, 2 * sr, sr)
  roll = symbolic.piano_roll(notes, fs=sr / hop, frames=2 * sr // hop)
  ref = measures.roll_pitch_classes(roll)
  np.testing.assert_array_equal(np.flatnonzero(ref.any(0)), [0, 4, 7])
  heard = measures.heard_pitch_classes(audio, sr, hop, ref.shape[0])
  assert measures.frame_f1(heard, ref)["f1"] > 0.6
  wrong = measures.roll_pitch_classes(np.roll(roll, 2, axis=1))
  assert measures.frame_f1(heard, wrong)["f1"] < 0.3
  assert not heard[int(1.8 * sr / hop):].any()  # the piano has died away: silence holds no pitch


def test_symbolic_statistics():
  notes = np.array([[0.0, 1.0, 60, 80], [0.0, 1.0, 64, 80], [1.0, 2.0, 62, 80], [2.0, 4.0, 74, 80]])
  np.testing.assert_allclose(measures.pitch_class_histogram(notes)[[0, 2, 4]], [0.25, 0.5, 0.25])
  h = measures.interval_histogram(notes)  # top line 64 -> 62 -> 74: -2, +12
  assert h[measures.INTERVALS - 2] == 0.5 and h[measures.INTERVALS + 12] == 0.5
  assert measures.note_density(notes) == 1.0
  assert measures.total_variation([1, 0], [0, 1]) == 1.0 and measures.total_variation([0.5, 0.5], [0.5, 0.5]) == 0.0
  same = measures.symbolic_statistics([notes], [notes])
  assert same["pitch_class_tv"] == 0.0 and same["interval_tv"] == 0.0


def test_the_generate_pipeline_writes_midi_wav_and_a_picture(tmp_path, data_dir):
  soundfile = pytest.importorskip("soundfile")
  from mirjax.jobs import generate
  spec = importlib.util.spec_from_file_location("generate_cfg", "configs/generate.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config("pipeline,smoke")
  c.lstm.data.data_dir = c.wavenet.data.data_dir = data_dir
  results = generate.run(c, str(tmp_path))
  assert results["pieces"] == 2 and results["lstm_step"] == 12 and results["wavenet_step"] == 12
  for k in range(2):
    stem = tmp_path / "generated" / f"piece{k}"
    audio, sr = soundfile.read(str(stem) + ".wav")
    assert sr == 16000 and len(audio) == 2048 and np.abs(audio).max() <= 1.0
    assert (stem.with_suffix(".png")).stat().st_size > 1000
    assert (stem.with_suffix(".mid")).stat().st_size > 0
  for name in ("generated", "shuffled_roll", "other_piece_roll", "rendered_roll"):
    assert 0.0 <= results["fidelity_f1"][name]["mean"] <= 1.0
    per_piece = results["fidelity_f1"][name]["per_piece"]
    assert len(per_piece) == 2 and results["fidelity_f1"][name]["mean"] == pytest.approx(np.mean(per_piece))
  # the F1s of the written pieces, recomputed from the files alone: the MIDI's notes as the
  # WaveNet's roll, the pitch classes heard in the WAV (16-bit: a frame may flip) and in the
  # notes rendered by the same synthesiser
  pretty_midi = pytest.importorskip("pretty_midi")
  sr, hop = int(c.wavenet.model.sample_rate), int(c.wavenet.data.hop)
  for k in range(2):
    stem = tmp_path / "generated" / f"piece{k}"
    audio, _ = soundfile.read(str(stem) + ".wav", dtype="float32")
    frames = len(audio) // hop
    midi = pretty_midi.PrettyMIDI(str(stem) + ".mid")  # read_midi would refuse a piece this short
    notes = np.array([(n.start, n.end, n.pitch, n.velocity) for n in midi.instruments[0].notes])
    ref = measures.roll_pitch_classes(aligned.sample_roll(notes, sr, hop, frames))
    heard = measures.frame_f1(measures.heard_pitch_classes(audio, sr, hop, frames), ref)["f1"]
    assert heard == pytest.approx(results["fidelity_f1"]["generated"]["per_piece"][k], abs=1 / frames)
    rendered = generate.render(notes, len(audio), sr)
    played = measures.frame_f1(measures.heard_pitch_classes(rendered, sr, hop, frames), ref)["f1"]
    assert played == pytest.approx(results["fidelity_f1"]["rendered_roll"]["per_piece"][k], abs=1e-6)
  # the test metrics it reports are the trained runs' own
  for model in ("lstm", "wavenet"):
    with open(tmp_path / model / "results.json") as f:
      run = json.load(f)
    assert results[f"{model}_test"] == {k: v for k, v in run.items() if k.startswith("test/")}
  with open(tmp_path / "results.json") as f:
    assert json.load(f)["files"] == results["files"]
  assert os.path.exists(tmp_path / "generated" / "generate.md")
  again = generate.run(c, str(tmp_path))  # both runs reused, the same pieces
  assert again["fidelity_f1"] == results["fidelity_f1"]
  assert again["roll_information"] == results["roll_information"]
  _check_roll_information(results["roll_information"], str(tmp_path / "wavenet"), c.wavenet.data)


def _check_roll_information(info, wavenet_dir, data_cfg):
  """The bits per sample under the true roll are the WaveNet's cross-entropy computed here
  directly; a WaveNet whose roll projection is zeroed saves exactly nothing."""
  import jax
  from mirjax import checkpoint
  from mirjax.audio.mulaw import mu_law_encode
  from mirjax.data import aligned
  from mirjax.jobs import generate
  run = checkpoint.load_trained_run(wavenet_dir, folder="best")
  assert info["clips"] == 4 and info["seconds"] == pytest.approx(1024 / 16000)
  assert info["saved_vs_shuffled"] == pytest.approx(info["shuffled_roll"] - info["true_roll"])
  assert info["saved_vs_empty"] == pytest.approx(info["empty_roll"] - info["true_roll"])
  assert info["saved_vs_empty"] != 0.0  # the roll reaches the output
  test = aligned.load(data_cfg, data_cfg.data_dir)[0]["test"]
  idx = np.unique(np.linspace(0, len(test) - 1, 4).round().astype(int))
  audio = np.stack([test.audio[i][:1024] / 32768.0 for i in idx]).astype(np.float32)
  rolls = np.stack([test[i]["roll"][:8] for i in idx]).astype(np.float32)
  logits = np.asarray(run.system.model.apply({"params": run.state.params}, {"audio": audio, "roll": rolls})["wavenet"],
                      np.float64)
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
  q = np.asarray(mu_law_encode(audio))
  nll = -np.take_along_axis(logp[:, :-1], q[:, 1:, None], -1)[..., 0]
  assert info["true_roll"] == pytest.approx(nll.mean() / np.log(2), rel=1e-5)
  params = jax.tree_util.tree_map(np.asarray, run.state.params)
  params["cond_in"]["kernel"] = np.zeros_like(params["cond_in"]["kernel"])
  params["cond_in"]["bias"] = np.zeros_like(params["cond_in"]["bias"])
  deaf = run._replace(state=run.state.replace(params=params))
  zero = generate.roll_information(deaf, data_cfg, 4, 1024 / 16000)
  assert zero["saved_vs_shuffled"] == pytest.approx(0.0, abs=1e-6) and zero["saved_vs_empty"] == pytest.approx(0.0, abs=1e-6)
