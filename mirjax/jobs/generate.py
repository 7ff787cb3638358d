"""The generation pipeline (config.job = "generate"; configs/generate.py:pipeline).

"Conditioning Deep Generative Raw Audio Models for Structured Automatic Music" (Manzelli
et al., arXiv:1806.09905): the LSTM (config.lstm) and the conditioned WaveNet
(config.wavenet) are trained by the train job into WORKDIR/lstm and WORKDIR/wavenet (a
finished run of the same config is reused; a killed one resumes), each read back at the
step its validation chose. Then, for `generate.pieces` pieces at once:

  1. the LSTM samples event tokens (temperature, top-k, nucleus), decoded to notes and cut
     to `generate.seconds`;
  2. their piano roll conditions the WaveNet, which samples audio with cached activations;
  3. WORKDIR/generated/piece<k>.mid, .wav and .png (the roll above the generated audio's
     constant-Q spectrogram) are written.

It measures (results.json, generated/generate.md): how much the WaveNet uses its roll, as
the bits per sample of test clips given their own roll against the roll shuffled in time
and an empty one; conditioning fidelity, the frame-level
F1 of the pitch classes a chromagram hears in the audio against the roll's, for the
generated audio, for audio the WaveNet generates from the roll shuffled in time (a control
that keeps the notes but breaks the alignment) or from the next piece's roll (other notes),
and for the roll rendered by the embedded synthesiser (what a perfect model of that
synthesiser would reach); and statistics of the
sampled notes against the test pieces (pitch-class and interval histograms, note density),
beside the same statistics of the validation pieces against the test pieces.
"""
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mirjax import checkpoint, metrics, steps
from mirjax.data import aligned, default_data_dir, symbolic
from mirjax.errors import ConfigError
from mirjax.evaluation import generation as measures


def check(config):
  g = config.generate
  if g.pieces < 1 or g.tokens < 2 or not g.seconds > 0:
    raise ConfigError(f"generate.pieces={g.pieces}, tokens={g.tokens}, seconds={g.seconds}: "
                      "generate at least 1 piece of at least 2 tokens and a positive length")
  if not g.temperature > 0 or not 0 < g.top_p <= 1 or g.top_k < 0:
    raise ConfigError(f"generate.temperature={g.temperature}, top_k={g.top_k}, top_p={g.top_p}: "
                      "temperature > 0, top_k >= 0 (0: off), 0 < top_p <= 1")
  if config.wavenet.model.name != "wavenet" or not config.wavenet.model.condition:
    raise ConfigError("config.wavenet must train a conditioned WaveNet (model.condition = True)")
  if g.information_clips < 1 or not g.information_seconds > 0:
    raise ConfigError(f"generate.information_clips={g.information_clips}, information_seconds="
                      f"{g.information_seconds}: measure at least 1 test clip over a positive length")
  if g.top_k > symbolic.VOCAB:
    raise ConfigError(f"generate.top_k={g.top_k} exceeds the {symbolic.VOCAB} tokens (0: no top-k limit)")
  if round(g.seconds * config.wavenet.model.sample_rate) < config.wavenet.data.hop:
    raise ConfigError(f"generate.seconds={g.seconds} is shorter than one piano-roll frame "
                      f"({config.wavenet.data.hop} samples)")


def _trained(config, path):
  """(the run trained from `config` in `path`, trained now unless it finished before, read at
  the step its validation chose; its test metrics)."""
  from mirjax.jobs import compare  # pylint: disable=import-outside-toplevel
  os.makedirs(path, exist_ok=True)
  results = compare._run(config, path)  # pylint: disable=protected-access
  folder = "best" if config.train.select_by and os.path.isdir(os.path.join(path, "best")) else "checkpoints"
  return checkpoint.load_trained_run(path, folder=folder), {k: v for k, v in results.items() if k.startswith("test/")}


def sample_notes(run, g, key) -> list[np.ndarray]:
  """`g.pieces` pieces of notes sampled from the trained LSTM run."""
  from mirjax.models.lstm import sample_tokens  # pylint: disable=import-outside-toplevel
  model = run.system.model
  if model.styles and not 0 <= g.style < model.styles:
    raise ConfigError(f"generate.style={g.style}: the LSTM knows styles 0..{model.styles - 1} "
                      f"({', '.join(run.meta.get('class_names', ()))})")
  style = jnp.full((g.pieces,), int(g.style), jnp.int32)
  sample = jax.jit(lambda params, key: sample_tokens(
      model, params, key, g.pieces, g.tokens, style=style, temperature=g.temperature, top_k=g.top_k,
      top_p=g.top_p, never=(symbolic.BOS, symbolic.PAD)))
  tokens = np.asarray(sample({"params": run.state.params}, key))
  pieces = []
  for row in tokens:
    notes = symbolic.decode(row)
    notes = notes[notes[:, 0] < g.seconds]
    notes[:, 1] = np.minimum(notes[:, 1], g.seconds)
    pieces.append(notes)
  return pieces


def audio_sampler(run, n_samples: int, temperature: float, output: str = "softmax"):
  """fn(rolls (pieces, frames, 128), key) -> audio (pieces, n_samples) in [-1, 1] that the
  trained WaveNet samples conditioned on the rolls (compiled once for every call)."""
  from mirjax.audio.mulaw import mu_law_decode  # pylint: disable=import-outside-toplevel
  from mirjax.models import wavenet  # pylint: disable=import-outside-toplevel
  model = run.system.model
  gen = jax.jit(lambda params, roll, key: mu_law_decode(
      wavenet.sample(model, params, key, roll.shape[0], n_samples, roll=roll, temperature=temperature,
                     output=output)))
  return lambda rolls, key: np.asarray(gen({"params": run.state.params}, jnp.asarray(rolls, jnp.float32), key))


def roll_information(run, data_cfg, clips: int, seconds: float, seed: int = 0) -> dict:
  """Bits per sample the trained WaveNet gives `clips` test clips of the aligned data (their
  first `seconds`, evenly spaced over the split) conditioned on their own roll, on the roll
  shuffled in time (the same notes, out of time) and on an empty roll, as its training loss
  counts them; and what the true roll saves against each. A WaveNet that ignores its roll
  saves nothing, however well it models audio."""
  from mirjax.data import pipeline  # pylint: disable=import-outside-toplevel
  sources, _ = aligned.load(data_cfg, data_cfg.data_dir or default_data_dir())
  test, hop = sources["test"], int(data_cfg.hop)
  frames = max(1, int(round(seconds * run.config.model.sample_rate)) // hop)
  idx = np.unique(np.linspace(0, len(test) - 1, min(clips, len(test))).round().astype(int))
  audio = np.stack([pipeline.to_float(test.audio[i][:frames * hop]) for i in idx])
  rolls = np.stack([test[i]["roll"][:frames] for i in idx]).astype(np.float32)
  perm = np.random.default_rng(seed).permutation(frames)
  loss_step = jax.jit(functools.partial(steps.eval_losses, model=run.system.model, task=run.system.task,
                                        dtype=run.system.dtype))

  def bits(r, batch=8):  # the training loss's mean over every predicted sample, in bits
    total = count = 0.0
    for k in range(0, len(audio), batch):
      losses, n = loss_step(run.state, {"audio": audio[k:k + batch], "roll": r[k:k + batch]})
      total, count = total + float(losses[0]) * float(n), count + float(n)
    return total / count / float(np.log(2.0))
  out = {"clips": int(len(idx)), "seconds": frames * hop / run.config.model.sample_rate,
         "true_roll": bits(rolls), "shuffled_roll": bits(rolls[:, perm]), "empty_roll": bits(np.zeros_like(rolls))}
  out["saved_vs_shuffled"] = out["shuffled_roll"] - out["true_roll"]
  out["saved_vs_empty"] = out["empty_roll"] - out["true_roll"]
  return out


def render(notes: np.ndarray, n_samples: int, sr: int) -> np.ndarray:
  """The notes played by the embedded synthesiser (acoustic grand piano), levelled as the
  embedded clips are (-20 dBFS RMS), in [-1, 1]."""
  # pylint: disable=import-outside-toplevel
  from mirjax.data.embedded import render as synth
  events = np.stack([notes[:, 0], notes[:, 1] - notes[:, 0], notes[:, 2], np.zeros(len(notes)), notes[:, 3]], 1)
  audio = synth.synthesize(events, {0: 0}, n_samples, sr)
  return synth.level(audio, -20.0) if np.abs(audio).max() > 0 else audio


def picture(path: str, roll: np.ndarray, audio: np.ndarray, sr: int, hop: int, title: str):
  """The piano roll above the audio's constant-Q spectrogram (dB), on one time axis."""
  # pylint: disable=import-outside-toplevel
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from mirjax import audio as dsp
  seconds = len(audio) / sr
  spec = np.abs(np.asarray(dsp.cqt(jnp.asarray(audio, jnp.float32), sr=sr, hop_length=hop, n_bins=72)))
  db = 20 * np.log10(spec + 1e-6)
  fig, (a, b) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
  pitches = np.flatnonzero(roll.any(0))
  lo, hi = (int(pitches.min()) - 2, int(pitches.max()) + 3) if pitches.size else (36, 96)
  a.imshow(roll[:, lo:hi].T, origin="lower", aspect="auto", cmap="Greys", extent=(0, seconds, lo, hi))
  a.set_ylabel("MIDI pitch")
  a.set_title(title)
  b.imshow(db.T, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, extent=(0, seconds, 24, 96))
  b.set_ylabel("constant-Q (MIDI pitch)")
  b.set_xlabel("seconds")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run(config, workdir: str) -> dict:
  """Trains (or reuses) both models, generates, writes the pieces and results.json."""
  # pylint: disable=import-outside-toplevel
  import soundfile

  from mirjax.jobs import compare
  t0 = time.time()
  check(config)
  compare.share_compilations(workdir)
  g = config.generate
  lstm, lstm_test = _trained(config.lstm, os.path.join(workdir, "lstm"))
  wave, wavenet_test = _trained(config.wavenet, os.path.join(workdir, "wavenet"))
  sr, hop = int(config.wavenet.model.sample_rate), int(config.wavenet.data.hop)
  n_samples = int(round(g.seconds * sr)) // hop * hop
  frames = n_samples // hop
  k_notes, k_audio, k_shuffle, k_other = jax.random.split(jax.random.key(int(g.seed)), 4)
  pieces = sample_notes(lstm, g, k_notes)
  # the rolls as the WaveNet learnt them: keys down as the synthesiser plays the notes
  rolls = np.stack([aligned.sample_roll(p, sr, hop, frames) for p in pieces]).astype(np.float32)
  sample_audio = audio_sampler(wave, n_samples, g.wavenet_temperature, wave.config.task.output)
  audio = sample_audio(rolls, k_audio)
  perm = np.random.default_rng(int(g.seed)).permutation(frames)  # the control: the same notes, out of time
  shuffled = sample_audio(rolls[:, perm], k_shuffle)
  # the other control: audio generated from the next piece's roll (other notes, the same model)
  others = sample_audio(rolls[np.roll(np.arange(len(rolls)), -1)], k_other) if len(rolls) > 1 else None
  rendered = np.stack([render(p, n_samples, sr) for p in pieces])

  out = os.path.join(workdir, "generated")
  os.makedirs(out, exist_ok=True)
  files, fidelity = [], {"generated": [], "shuffled_roll": [], "rendered_roll": []}
  if others is not None:
    fidelity["other_piece_roll"] = []
  for k, (notes, roll) in enumerate(zip(pieces, rolls)):
    stem = os.path.join(out, f"piece{k}")
    symbolic.write_midi(notes, stem + ".mid")
    soundfile.write(stem + ".wav", audio[k], sr, subtype="PCM_16")
    picture(stem + ".png", roll, audio[k], sr, hop, f"piece {k}: LSTM notes (top), WaveNet audio (bottom)")
    files += [stem + ext for ext in (".mid", ".wav", ".png")]
    ref = measures.roll_pitch_classes(roll)
    versions = [("generated", audio[k]), ("shuffled_roll", shuffled[k]), ("rendered_roll", rendered[k])]
    versions += [("other_piece_roll", others[k])] if others is not None else []
    for name, a in versions:
      fidelity[name].append(measures.frame_f1(measures.heard_pitch_classes(a, sr, hop, frames), ref)["f1"])

  d = config.lstm.data  # the LSTM's corpus, as its training cached it: its test pieces are the reference
  cache = symbolic.cached_tokens(d.data_dir or default_data_dir(), d.manual_dir if d.name == "midi" else None, d.config)

  def split_pieces(k):
    idx = np.flatnonzero(cache["split"] == k)
    return [symbolic.decode(cache["tokens"][cache["offsets"][i]:cache["offsets"][i + 1]]) for i in idx]
  test, valid = split_pieces(2), split_pieces(1)
  results = {
      "pieces": int(g.pieces), "seconds": float(n_samples / sr), "files": files,
      "lstm_step": int(lstm.step), "wavenet_step": int(wave.step),
      "lstm_test": lstm_test, "wavenet_test": wavenet_test,
      "roll_information": roll_information(wave, config.wavenet.data, int(g.information_clips),
                                           float(g.information_seconds), int(g.seed)),
      "fidelity_f1": {name: {"mean": float(np.mean(v)), "per_piece": [float(x) for x in v]} for name, v in fidelity.items()},
      "symbolic_vs_test": measures.symbolic_statistics(pieces, test),
      "valid_vs_test": measures.symbolic_statistics(valid, test),
      "wall_time_s": time.time() - t0}
  with open(os.path.join(out, "generate.md"), "w") as f:
    f.write(report(results))
  metrics.write_results(workdir, results)
  print(report(results))
  return results


def report(results) -> str:
  f, s, v = results["fidelity_f1"], results["symbolic_vs_test"], results["valid_vs_test"]
  lines = [f"# Generated: {results['pieces']} pieces of {results['seconds']:.2f} s", "",
           "| audio | pitch-class F1 against the piece's roll (mean ± std over pieces) |", "|---|---|"]
  lines += [f"| {name.replace('_', ' ')} | {f[name]['mean']:.4f} ± {np.std(f[name]['per_piece'], ddof=1) if len(f[name]['per_piece']) > 1 else float('nan'):.4f} |"
            for name in ("generated", "shuffled_roll", "other_piece_roll", "rendered_roll") if name in f]
  r = results["roll_information"]
  lines += ["", f"WaveNet bits per sample on {r['clips']} test clips ({r['seconds']:.2f} s each), by conditioning roll:", "",
            "| roll | bits / sample | the true roll saves |", "|---|---|---|",
            f"| the clip's own | {r['true_roll']:.4f} | |",
            f"| shuffled in time | {r['shuffled_roll']:.4f} | {r['saved_vs_shuffled']:.4f} |",
            f"| empty | {r['empty_roll']:.4f} | {r['saved_vs_empty']:.4f} |"]
  lines += ["", "| notes | pitch-class TV to test | interval TV to test | notes / s |", "|---|---|---|---|",
            f"| LSTM samples | {s['pitch_class_tv']:.4f} | {s['interval_tv']:.4f} | {s['note_density']:.2f} |",
            f"| validation pieces | {v['pitch_class_tv']:.4f} | {v['interval_tv']:.4f} | {v['note_density']:.2f} |",
            f"| test pieces | 0 | 0 | {s['reference_note_density']:.2f} |"]
  return "\n".join(lines) + "\n"
