"""python -m mirjax.main --config=configs/ssl.py --workdir=workdirs/ssl

Multi-task self-supervised pre-training of music encoders (Wu et al., "Multi-task
self-supervised pre-training for music classification", ICASSP 2021): an encoder and
PASE-style workers that reconstruct hand-crafted features of its input (waveform,
log-power spectrum, MFCC, log-mel, chroma, tempogram, prosody, spectral contrast), their
losses weighted by an optax transformation, then downstream probes.

  python -m mirjax.main --config=configs/ssl.py:pase,gradnorm,spectral --workdir=workdirs/ssl_pase
  python -m mirjax.main --config=configs/ssl.py:probe --config.model.pretrained=workdirs/ssl --workdir=workdirs/ssl_probe
  python -m mirjax.main --config=configs/ssl.py:finetune,tempo --config.model.pretrained=workdirs/ssl --workdir=workdirs/ssl_ft
  python -m mirjax.main --config=configs/ssl.py:compare --workdir=workdirs/ssl_grid

The argument is comma-separated words: an encoder (cnn_logmel (default), pase,
sincmodnet), a worker selection (WORKER_SETS: all (default), spectral, temporal, pase), a weighting
(WEIGHTINGS: equal (default), static (--config.optim.combine.weights.<worker>=w),
uncertainty, gradnorm, dwa, pcgrad), a stage (pre-training by default; "probe" or "finetune" a pre-trained
encoder, whose run --config.model.pretrained names; or "compare": the grid of
mirjax/jobs/compare.py), a downstream task for probe / finetune ("tagging" (default) or an
embedded class label: texture, tempo, drums, composer), and "smoke".
Pre-training reads the embedded data's audio (labels unused) or, with
--config.data.name=audio --config.data.manual_dir=DIR, any folder of audio files.
"""
import ml_collections

from mirjax import config as base, models, overrides
from mirjax.data.embedded import LABELS

# Worker selections (mirjax/tasks/reconstruction.py)
WORKER_SETS = {
    "all": ("waveform", "lps", "mfcc", "logmel", "chroma", "tempogram", "prosody", "contrast"),
    "spectral": ("lps", "mfcc", "logmel", "chroma", "contrast"),
    "temporal": ("waveform", "tempogram", "prosody"),
    "pase": ("waveform", "lps", "mfcc", "prosody"),  # PASE's own workers
}
# Loss weightings by name: the combiner each uses (mirjax/optim/combine.py).
# "static": fixed weights, 1 each until set: --config.optim.combine.weights.<worker>=w
WEIGHTINGS = {"equal": "sum", "static": "static", "uncertainty": "uncertainty",
              "gradnorm": "gradnorm", "dwa": "dwa", "pcgrad": "pcgrad"}
DOWNSTREAM = ("tagging",) + tuple(LABELS)  # probe / fine-tuning tasks


def pretraining(encoder: str, workers: str, weighting: str) -> dict:
  """The override set (mirjax/overrides.py) of one pre-training run: its encoder
  (models.ENCODERS), workers (WORKER_SETS) and loss weighting (WEIGHTINGS)."""
  return {"model": {"encoder": models.encoder_config(encoder)},
          "task": {"branches": WORKER_SETS[workers]},
          "optim": {"combine": {"name": WEIGHTINGS[weighting]}}}


def head(task: str) -> dict:
  """The override set of a downstream task's head: "tagging" or an embedded class label."""
  if task == "tagging":
    return {"data": {"label": ""}, "task": {"name": "tagging", "branches": ("tagging",)}}
  return {"data": {"label": task}, "task": {"name": "classification", "branches": ("classification",)}}


def get_config(arg=None):
  known = {"encoder": models.ENCODERS, "workers": tuple(WORKER_SETS), "weighting": tuple(WEIGHTINGS),
           "stage": ("probe", "finetune", "compare"), "downstream": DOWNSTREAM, "smoke": ("smoke",)}
  picked = {}
  for w in [w for w in (arg or "").split(",") if w]:
    kind = [k for k, vs in known.items() if w in vs]
    if not kind or kind[0] in picked:
      raise ValueError(f"config argument {arg!r}: {w!r} is unknown or repeated; words: {known}")
    picked[kind[0]] = w
  stage, encoder = picked.get("stage", "pretrain"), picked.get("encoder", "cnn_logmel")
  downstream = stage in ("probe", "finetune")
  c = base.base(models.probe_config(encoder) if downstream else models.ssl_config(encoder))
  # The experiment on the embedded data's audio: pre-training about 20 minutes on a 2-core CPU
  c.data.crop_seconds = 3.0  # training crops and evaluation chunks, seconds
  c.train.batch_size = 16  # global batch
  c.train.num_steps = 1000 if downstream else 1500
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.optim.learning_rate = 1e-3  # AdamW's peak after a linear warm-up, then cosine decay to 0
  c.optim.warmup_steps = 100
  c.optim.combine.window = 50  # "dwa": steps per loss-ratio window
  c.eval.n_chunks = 2
  if downstream:
    c.model.freeze = stage == "probe"
    overrides.apply(c, head(picked.get("downstream", "tagging")))
  else:
    c.task.name = "reconstruction"
    c.optim.combine.gradnorm_layer = "['body']['project']"  # "gradnorm": the encoder's last (shared) layer
    weighting = picked.get("weighting", "equal")
    overrides.apply(c, pretraining(encoder, picked.get("workers", "all"), weighting))
    for worker in WORKER_SETS["all"]:  # "static": 1 each until set
      c.optim.combine.weights[worker] = 1.0
  c.compare = ml_collections.ConfigDict()
  # The grid (job "compare_ssl", mirjax/jobs/compare.py): pre-training runs by name, each an
  # override set of this config, and "random" (in `untrained`): the encoder untrained, the
  # floor pre-training should raise; a frozen-encoder probe of each per downstream task.
  grid = [("cnn_logmel", "all", w) for w in WEIGHTINGS if w != "static"] + [
      ("cnn_logmel", "spectral", "equal"), ("cnn_logmel", "temporal", "equal"),
      ("pase", "all", "equal"), ("sincmodnet", "all", "equal")]
  if "smoke" in picked:
    grid = [("cnn_logmel", "temporal", "pcgrad")]
  c.compare.overrides = {"_".join(p): pretraining(*p) for p in grid}
  c.compare.untrained = ("random",)
  c.compare.variants = tuple("_".join(p) for p in grid) + c.compare.untrained  # table rows
  c.compare.downstream = ("tagging", "tempo")  # probes trained on each frozen encoder
  c.compare.heads = {t: head(t) for t in DOWNSTREAM}  # override set of each downstream task
  # Each probe is the grid's config with its point's overrides (data, seed, batch, eval,
  # mesh, logging: every override given to the grid), a frozen-encoder probe of that
  # encoder, its task's head, then this override set
  c.compare.probe = ml_collections.ConfigDict({
      "train": {"num_steps": 600, "eval_every": 600, "checkpoint_every": 600},
      "optim": {"learning_rate": 1e-3, "warmup_steps": 100, "combine": {"name": "sum"}}})
  if "smoke" in picked:
    base.smoke(c)
    c.optim.combine.window = 3
    c.compare.probe.train.num_steps = c.compare.probe.train.eval_every = 4
    c.compare.probe.train.checkpoint_every = 4
    c.compare.probe.optim.warmup_steps = 2
  if stage == "compare":
    c.job = "compare_ssl"
  return c
