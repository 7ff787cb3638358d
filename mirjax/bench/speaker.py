"""Speaker-embedding extraction: `python -m mirjax.bench.speaker [--quick]`.

Times the audio encoder of the audio-visual speaker model (mirjax/models/speaker.py,
`speaker_config("audio", --size)`: log-mel, mean normalisation, thin ResNet, attentive
statistics pooling, linear embedding; "resnet34" is wespeaker's ResNet-34) turning a batch
of utterances into embeddings: eval mode, jitted, the batch sharded over every device JAX
sees and the variables replicated. Printed: utterances/s (the median of --repeats calls
after one warm-up call). When PyTorch is installed it times a PyTorch port of the same
encoder (`mirjax.bench.speaker_port`, eval mode, under `torch.inference_mode`, one thread
per core) on the same batch, with mirjax's weights loaded into it, and prints the ratio
mirjax / PyTorch and the largest difference of the two embeddings.
"""
import os

import jax
import numpy as np
from absl import app, flags, logging

from mirjax import sharding
from mirjax.bench import common
from mirjax.models import speaker


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("batch", 64, "Utterances per batch (a multiple of the device count).")
  flags.DEFINE_float("seconds", 8.0, "Length of each utterance, seconds.")
  flags.DEFINE_enum("size", "resnet34", sorted(speaker.SIZES), "Encoder size (speaker.SIZES).")
  flags.DEFINE_integer("repeats", 3, "Timed batches; the median is reported.")
  flags.DEFINE_bool("torch", True, "Also time the PyTorch port when PyTorch is installed.")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS
SR = 16000


def _audio(n, seconds, seed=0):
  rng = np.random.default_rng(seed)
  return (0.1 * rng.standard_normal((n, int(seconds * SR)))).astype(np.float32)


def time_mirjax(cfg, audio, repeats):
  """(seconds per batch, embeddings, variables, parameter count) of the jitted, sharded
  audio encoder."""
  model = speaker.build(cfg, n_classes=2)  # the head is not used: embeddings only
  mesh = sharding.make_mesh(-1)
  rep, split = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  variables = jax.jit(model.init, out_shardings=rep)(jax.random.key(0), audio[:1])
  embed = jax.jit(lambda v, a: model.apply(v, a, train=False, method="embeddings")[speaker.AUDIO],
                  in_shardings=(rep, split), out_shardings=split)
  x = jax.device_put(audio, split)
  out = {}
  seconds = common.median_seconds(
      lambda: out.update(emb=embed(variables, x).block_until_ready()), repeats)
  n_params = sum(v.size for v in jax.tree_util.tree_leaves(variables["params"][speaker.AUDIO + "_encoder"]))
  return seconds, np.asarray(out["emb"]), variables, n_params


def time_torch(cfg, audio, variables, repeats):
  """(seconds per batch, embeddings, threads, torch version) of the PyTorch port with
  mirjax's `variables` loaded, or None when PyTorch is not installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  from mirjax.bench import speaker_port  # pylint: disable=import-outside-toplevel
  threads = len(os.sched_getaffinity(0))
  torch.set_num_threads(threads)
  port = speaker_port.load_flax(speaker_port.audio_encoder(cfg), jax.device_get(variables))
  x = torch.from_numpy(audio)
  out = {}
  with torch.inference_mode():
    seconds = common.median_seconds(lambda: out.update(emb=port(x)), repeats)
  return seconds, out["emb"].numpy(), threads, torch.__version__


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  batch, seconds, size, repeats = FLAGS.batch, FLAGS.seconds, FLAGS.size, FLAGS.repeats
  if FLAGS.quick:
    batch, seconds, size, repeats = -(-8 // jax.device_count()) * jax.device_count(), 1.0, "cpu", 2
  if batch % jax.device_count():
    raise app.UsageError(f"--batch={batch} must be a multiple of the {jax.device_count()} devices")
  cfg = speaker.speaker_config("audio", size)
  print(common.header("mirjax.bench.speaker"))
  audio = _audio(batch, seconds)
  mirjax_s, emb, variables, n_params = time_mirjax(cfg, audio, repeats)
  print(f"speaker embeddings, audio encoder of speaker_config('audio', {size!r}) "
        f"({n_params / 1e6:.2f} M parameters), batch {batch} x {seconds:g} s at 16 kHz, "
        f"{jax.device_count()} device(s), median of {repeats}")
  print(f"  mirjax:        {batch / mirjax_s:10.2f} utterances/s  ({1e3 * mirjax_s:.1f} ms/batch)")
  got = time_torch(cfg, audio, variables, repeats) if FLAGS.torch else None
  if got is None:
    print("  PyTorch port: skipped (PyTorch is not installed: `pip install torch` to compare)")
    return
  torch_s, torch_emb, threads, version = got
  print(f"  PyTorch port:  {batch / torch_s:10.2f} utterances/s  ({1e3 * torch_s:.1f} ms/batch, "
        f"torch {version}, {threads} thread(s))  -> mirjax / PyTorch = {torch_s / mirjax_s:.2f}x")
  diff = float(np.abs(emb - torch_emb).max() / np.abs(emb).max())
  print(f"  largest difference of the embeddings (same weights): {diff:.2g} of mirjax's largest")


if __name__ == "__main__":
  define_flags()
  app.run(main)
