"""Shared defaults of the tagging configs; every field is documented where it is set.

A config file under configs/ calls `tagging(frontend, arg)` and then sets what makes its
system what it is. The variant `arg` picks the data and scale:
  None     the embedded default data (made on this machine), ~10 minutes on a 2-core CPU
  "smoke"  a tiny embedded set and a dozen steps: seconds, for tests
  "mtat"   MagnaTagATune from --config.data.manual_dir, Won et al. (2020)'s protocol
  "gtzan"  GTZAN genres from --config.data.manual_dir, fault-filtered split, classification
"""
import ml_collections

from mirjax import models


def tagging(frontend: str, arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.job = "train"  # which job mirjax.main runs: "train" (jobs/train.py)
  c.seed = 0  # seeds parameters, data order, crops and dropout

  c.data = ml_collections.ConfigDict()
  # "embedded" (music21 pieces rendered by mirjax), "folder" (your audio + tags.csv),
  # "mtat" (MagnaTagATune) or "gtzan": the last three read --config.data.manual_dir
  c.data.name = "embedded"
  c.data.config = "default"  # "embedded" builder config: "default" (~1,100 clips) or "smoke"
  c.data.data_dir = ""  # TFDS data dir; "" -> $MIRJAX_DATA_DIR or ~/.cache/mirjax/tfds
  c.data.manual_dir = ""  # the dataset's folder, as distributed (folder / mtat / gtzan)
  c.data.sample_rate = 16000  # folder / mtat / gtzan: audio is resampled to this rate, Hz
  c.data.clip_seconds = 10.0  # "folder": files are cut into clips of this length, seconds
  c.data.convention = "clean"  # "mtat": which clips count: "clean", "pons" or "all"
  c.data.top_k = 50  # "mtat": the most frequent tags kept
  c.data.crop_seconds = 3.0  # length of training crops and evaluation chunks, seconds
  c.data.read_threads = 2  # host threads reading and cropping examples

  c.model = models.default_config(frontend)  # front-end + back-end, see mirjax/models

  c.task = ml_collections.ConfigDict()
  c.task.name = "tagging"  # "tagging" (sigmoid, binary cross-entropy) or "classification" (softmax)
  c.task.branches = ("tagging",)  # output branches of the model that carry a loss

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adamw"
  c.optim.learning_rate = 1e-3  # peak learning rate after warm-up
  c.optim.warmup_steps = 100  # linear warm-up steps, then cosine decay to 0 at the last step
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.weight_decay = 1e-4  # decoupled weight decay (AdamW)
  c.optim.clip_norm = 1.0  # clip the combined gradient to this global norm (0: no clipping)
  c.optim.combine = ml_collections.ConfigDict()
  c.optim.combine.name = "sum"  # how branch gradients combine: "sum" or "static"
  c.optim.combine.weights = ml_collections.ConfigDict()  # {branch: weight} for "static"

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 16  # global batch (all devices); a multiple of the device count
  c.train.num_steps = 2000  # optimizer steps
  c.train.log_every = 20  # steps between training-metric writes
  c.train.eval_every = 500  # steps between validation runs
  c.train.checkpoint_every = 250  # steps between checkpoints (and one at the end)
  c.train.keep_checkpoints = 2  # newest checkpoints kept on disk

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 32  # global evaluation batch of whole clips
  c.eval.n_chunks = 4  # evenly spaced crops per clip whose predictions are averaged (Won et al. 2020)

  c.mesh = ml_collections.ConfigDict()
  c.mesh.num_devices = -1  # data-parallel devices; -1: every device of every process

  if arg == "smoke":
    c.data.config = "smoke"
    c.data.crop_seconds = 1.0
    c.train.batch_size = 8
    c.train.num_steps = 12
    c.train.log_every = 4
    c.train.eval_every = 6
    c.train.checkpoint_every = 6
    c.optim.warmup_steps = 2
    c.eval.batch_size = 16
    c.eval.n_chunks = 2
  elif arg == "mtat":  # Won et al. (2020): 59,049-sample crops, 16 chunks per test clip
    c.data.name = "mtat"
    c.data.crop_seconds = 59049 / 16000
    c.train.num_steps = 100_000  # ~105 epochs of the clean split at batch 16
    c.train.log_every = 100
    c.train.eval_every = 5000
    c.train.checkpoint_every = 2500
    c.optim.warmup_steps = 1000
    c.eval.n_chunks = 16
  elif arg == "gtzan":
    c.data.name = "gtzan"
    c.task.name = "classification"
    c.task.branches = ("classification",)
    c.train.num_steps = 10_000
    c.train.log_every = 50
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.optim.warmup_steps = 500
    c.eval.n_chunks = 16
  elif arg:
    raise ValueError(f"unknown config variant {arg!r}; use ':smoke', ':mtat', ':gtzan' or nothing")
  return c
