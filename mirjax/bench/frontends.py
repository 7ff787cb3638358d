"""Front-end speed: `python -m mirjax.bench.frontends [--quick]`.

1. Fixed features against librosa, the baseline an MIR researcher would otherwise use:
   log-mel (the LogMel front-end's settings), constant-Q, spectral contrast (librosa's
   defaults: 6 octave bands above 200 Hz) and chroma of a batch of clips at
   16 kHz; mirjax jitted over the whole batch, sharded over every device, librosa clip by
   clip. Printed: clips/s of each, the ratio, and the largest difference (the same
   computation). On a CPU the bench makes one host device per core (unless XLA_FLAGS
   already sets --xla_force_host_platform_device_count), so the batch is spread over all
   cores as a data-parallel mirjax job spreads it over accelerators; run it under
   `taskset -c 0` for the one-core ratio.
2. Each learnable front-end's forward + backward pass (gradient of a loss on its output
   with respect to its parameters) on a batch of 3 s clips sharded over every device:
   examples/s, and the FLOP/s it achieves (XLA's FLOP count / time) as a fraction of the
   measured float32 matmul peak of the same devices.
"""
import time

from mirjax.bench import one_host_device_per_core

one_host_device_per_core()

import jax  # noqa: E402  (after XLA_FLAGS: the CPU device count is read when jax starts)
import jax.numpy as jnp  # noqa: E402
import librosa  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from mirjax import audio, frontends, sharding  # noqa: E402
from mirjax.audio import features as audio_features  # noqa: E402
from mirjax.bench import common  # noqa: E402


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("batch", 64, "Clips in the fixed-feature batch.")
  flags.DEFINE_float("seconds", 10.0, "Length of each fixed-feature clip, seconds.")
  flags.DEFINE_integer("train_batch", 16, "Clips in the front-end forward+backward batch (3 s each).")
  flags.DEFINE_integer("repeats", 5, "Timed repetitions; the median is reported.")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS
SR = 16000
LEARNABLE = ("rawconv", "sincnet", "modnet", "sincmodnet")


def _clips(n, seconds, seed=0):
  t = np.arange(int(seconds * SR)) / SR
  rng = np.random.default_rng(seed)
  f0 = rng.uniform(80, 1000, (n, 1))
  return (0.3 * np.sin(2 * np.pi * f0 * t * (1 + t / seconds)) + 0.05 * rng.standard_normal((n, t.size))
          ).astype(np.float32)


def _spread(batch, mesh):
  """`batch` on the mesh's devices, its leading axis split over them when it divides evenly
  (else whole on each); and that sharding."""
  where = sharding.batch_sharding(mesh) if len(batch) % mesh.size == 0 else sharding.replicated(mesh)
  return jax.device_put(batch, where), where


def fixed_features(x, mesh, repeats, librosa_clips):
  """(rows, lines): clips/s of mirjax and librosa for log-mel, CQT, spectral contrast and chroma."""
  mel_kw = dict(n_fft=512, hop_length=256, n_mels=96, fmax=8000.0)
  cases = {
      "log-mel (512 / 256, 96 mels)": (
          lambda a: audio.log_melspectrogram(a, sr=SR, **mel_kw),
          lambda c: librosa.power_to_db(librosa.feature.melspectrogram(y=c, sr=SR, **mel_kw)).T),
      "constant-Q (84 bins, hop 256)": (
          lambda a: jnp.abs(audio.cqt(a, sr=SR, hop_length=256)),
          lambda c: np.abs(librosa.cqt(c, sr=SR, hop_length=256)).T),
      "spectral contrast (2048 / 512)": (
          lambda a: audio_features.spectral_contrast(a, sr=SR),
          lambda c: librosa.feature.spectral_contrast(y=c, sr=SR).T),
      "chroma (2048 / 256)": (
          lambda a: audio.chroma_stft(a, sr=SR, n_fft=2048, hop_length=256),
          lambda c: librosa.feature.chroma_stft(y=c, sr=SR, n_fft=2048, hop_length=256, tuning=0.0).T),
  }
  rows = []
  xd, spread = _spread(x, mesh)
  for name, (ours, ref) in cases.items():
    f = jax.jit(ours, in_shardings=spread)
    t_ours = common.median_seconds(lambda: f(xd).block_until_ready(), repeats)
    some = x[:librosa_clips]
    ref(some[0])  # librosa's first call builds and caches its filters: not timed
    t0 = time.perf_counter()
    refs = [ref(c) for c in some]
    t_ref = time.perf_counter() - t0
    diff = max(float(np.abs(np.asarray(o) - r).max() / np.abs(r).max())
               for o, r in zip(jax.jit(ours)(some), refs))
    ours_rate, ref_rate = len(x) / t_ours, len(some) / t_ref
    rows.append((name, ours_rate, ref_rate, diff))
  return rows


def learnable(batch, mesh, repeats, peak):
  """(name, examples/s, achieved FLOP/s, fraction of peak) of each front-end's fwd+bwd."""
  x, _ = _spread(_clips(batch, 3.0, seed=1), mesh)
  rows = []
  for name in LEARNABLE:
    module = frontends.build(frontends.default_config(name))
    params = jax.device_put(module.init(jax.random.key(0), x[:1])["params"], sharding.replicated(mesh))
    step = jax.jit(jax.grad(lambda p, a: jnp.mean(module.apply({"params": p}, a) ** 2)))
    seconds = common.median_seconds(lambda: jax.block_until_ready(step(params, x)), repeats)
    achieved = common.flops(step, params, x) * mesh.size / seconds  # the count is per device
    rows.append((name, batch / seconds, achieved, achieved / peak))
  return rows


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  batch, seconds, train_batch, repeats = FLAGS.batch, FLAGS.seconds, FLAGS.train_batch, FLAGS.repeats
  if FLAGS.quick:
    batch, seconds, train_batch, repeats = 4, 2.0, 4, 2
  print(common.header("mirjax.bench.frontends"))
  mesh = sharding.make_mesh(-1)
  peak = common.matmul_peak(512 if FLAGS.quick else 2048, repeats, mesh)
  print(f"float32 matmul peak of all {mesh.size} device(s) at once: {peak / 1e9:.1f} GFLOP/s")
  x = _clips(batch, seconds)
  print(f"\nfixed features of {batch} x {seconds:g} s at 16 kHz (mirjax: one jitted call over "
        f"{mesh.size} device(s); librosa: clip by clip)")
  print(f"  {'feature':<31} {'mirjax clips/s':>15} {'librosa clips/s':>16} {'ratio':>7} {'max diff':>9}"
        "  (diff: of librosa's peak)")
  for name, ours, ref, diff in fixed_features(x, mesh, repeats, min(batch, 16)):
    print(f"  {name:<31} {ours:>15.1f} {ref:>16.1f} {ours / ref:>6.2f}x {diff:>9.2g}")
  print(f"\nlearnable front-ends, forward + backward, {train_batch} x 3 s at 16 kHz")
  print(f"  {'front-end':<12} {'examples/s':>11} {'GFLOP/s':>9} {'of peak':>8}")
  for name, rate, achieved, frac in learnable(train_batch, mesh, repeats, peak):
    print(f"  {name:<12} {rate:>11.1f} {achieved / 1e9:>9.1f} {100 * frac:>7.1f}%")


if __name__ == "__main__":
  define_flags()
  app.run(main)
