"""WaveNet generation speed: `python -m mirjax.bench.wavenet [--quick]`.

Samples per second of the conditioned WaveNet (configs/generate.py:wavenet: 2 stacks of
dilations 1..512, 32 residual and gate channels, 64 skip channels, a piano roll of 128
pitches at hop 128) generating from a random start, on this machine's first device:

  cached   `wavenet.sample`: a queue of past activations per dilated layer, one network
           step a sample, inside one `lax.scan` (fast-wavenet);
  naive    `wavenet.sample_naive`: the whole network recomputed over the growing sequence
           for every sample, O(length^2), timed at a shorter length;

with the same weights, pieces and keys (both draw the same samples: tests/test_wavenet.py).
Printed: samples/s (all pieces together) of each at `--naive_samples`, their ratio, the
cached sampler's rate at `--samples`, and that rate over real time at 16 kHz per piece and
for the batch. Each figure is the median of `--repeats` runs after a compiling one.
"""
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from mirjax.bench import common
from mirjax.models import wavenet


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_list("pieces", ["1", "8"], "Pieces generated at once (batch sizes) to time.")
  flags.DEFINE_integer("samples", 16000, "Samples per piece the cached sampler generates.")
  flags.DEFINE_integer("naive_samples", 512, "Samples per piece both samplers generate for the ratio.")
  flags.DEFINE_integer("repeats", 3, "Timed runs; the median is reported.")
  flags.DEFINE_bool("quick", False, "A tiny network and lengths: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS
SAMPLE_RATE = 16000


def main(argv):
  del argv
  print(common.header("wavenet"))
  stacks, layers, hop = 2, 10, 128
  samples, naive_samples, repeats = FLAGS.samples, FLAGS.naive_samples, FLAGS.repeats
  pieces_list = [int(p) for p in FLAGS.pieces]
  if FLAGS.quick:
    stacks, layers, samples, naive_samples, repeats, pieces_list = 1, 4, 512, 128, 1, [2]
  model = wavenet.WaveNet(dilations=wavenet.dilations(stacks, layers), residual=32, gate=32, skip=64, hop=hop)
  rng = np.random.default_rng(0)
  print(f"WaveNet: {stacks} stacks x {layers} layers (receptive field {wavenet.receptive_field(model.dilations)} "
        f"samples), roll hop {hop}, on {jax.devices()[0].device_kind}")
  for pieces in pieces_list:
    frames = -(-samples // hop)
    roll = jnp.asarray(rng.random((pieces, frames, 128)) < 0.03, jnp.float32)
    params = model.init(jax.random.key(0), {"classes": jnp.zeros((1, hop), jnp.int32), "roll": roll[:1, :1]})
    key = jax.random.key(1)
    rates = {}
    for name, fn, n in (("cached", wavenet.sample, naive_samples), ("naive", wavenet.sample_naive, naive_samples),
                        ("cached_long", wavenet.sample, samples)):
      r = roll[:, :-(-n // hop)]
      run = jax.jit(lambda p, r, fn=fn, n=n: fn(model, p, key, pieces, n, roll=r))
      jax.block_until_ready(run(params, r))  # compiles
      seconds = common.median_seconds(lambda run=run, r=r: jax.block_until_ready(run(params, r)), repeats, warmup=0)
      rates[name] = pieces * n / seconds
    per_piece = rates["cached_long"] / pieces / SAMPLE_RATE
    print(f"  {pieces} pieces: cached {rates['cached']:.1f} samples/s   naive {rates['naive']:.1f} samples/s   "
          f"ratio {rates['cached'] / rates['naive']:.2f}x at {naive_samples} samples; cached {rates['cached_long']:.1f} "
          f"samples/s at {samples} samples = {per_piece:.4f}x real time per piece, "
          f"{rates['cached_long'] / SAMPLE_RATE:.4f}x for the batch")
  print(f"  peak host memory {common.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
  define_flags()
  app.run(main)
