"""Shared defaults of the tagging configs; every field is documented where it is set.

A config file under configs/ calls `tagging(frontend, arg)` and then sets what makes its
system what it is. The variant `arg` picks the data and scale:
  None     the embedded default data (made on this machine), ~10 minutes on a 2-core CPU
  "smoke"  a tiny embedded set and a dozen steps: seconds, for tests
  "mtat"   MagnaTagATune from --config.data.manual_dir, Won et al. (2020)'s protocol and
           back-end size (`won2020`)
  "mtat_small"  the same protocol with the CPU-sized back-end
  "gtzan"  GTZAN genres from --config.data.manual_dir, fault-filtered split, classification
"""
import ml_collections

from mirjax import models
from mirjax.errors import ConfigError


def combine_config(name: str = "sum") -> ml_collections.ConfigDict:
  """How the optimizer combines per-branch gradients (mirjax/optim/combine.py)."""
  c = ml_collections.ConfigDict()
  # "sum", "static" (weights below), "uniform" (1 / K each), "gradient_blending", or a
  # multi-task weighting: "uncertainty", "gradnorm", "dwa", "pcgrad" (mirjax/optim/weighting.py)
  c.name = name
  c.weights = ml_collections.ConfigDict()  # {branch: weight} for "static"
  c.normalize = "sum"  # "uniform" / "gradient_blending": weights sum to 1 ("sum") or to K ("mean")
  c.window = 200  # "gradient_blending", "dwa": steps between weight re-estimations (an epoch)
  c.smoothing = 0.0  # "gradient_blending": w <- s * w_old + (1 - s) * w_new
  c.eps = 1e-2  # "gradient_blending": eps x mean_k dO_k^2 is added to each squared overfitting change
  c.start_step = -1  # "gradient_blending": first measurement; -1: once batch-norm averages settled
  c.uncertainty_lr = 0.01  # "uncertainty": step size of the learned log-variances
  c.gradnorm_layer = ""  # "gradnorm": substring of the last shared layer's parameter paths
  c.gradnorm_alpha = 1.5  # "gradnorm": strength of the pull toward equal training rates
  c.gradnorm_lr = 0.025  # "gradnorm": step size of the weights
  c.dwa_temperature = 2.0  # "dwa": softmax temperature of the loss ratios
  c.pcgrad_seed = 0  # "pcgrad": seed of the random projection order
  return c


def base(model: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Every field a training run has, around a model config (see mirjax/models)."""
  c = ml_collections.ConfigDict()
  c.job = "train"  # which job mirjax.main runs: "train" (jobs/train.py) or "compare" (jobs/compare.py)
  c.seed = 0  # seeds parameters, data order, crops and dropout

  c.data = ml_collections.ConfigDict()
  # "embedded" (music21 pieces rendered by mirjax), "folder" (your audio + tags.csv),
  # "mtat" (MagnaTagATune), "gtzan", "esc50" or "nsynth": all but "embedded" read
  # --config.data.manual_dir, the dataset's folder as distributed
  c.data.name = "embedded"
  c.data.config = "default"  # "embedded" builder config: "default" (~1,100 clips) or "smoke"
  c.data.label = ""  # "embedded": "" (tags) or a class label: "texture", "tempo", "drums", "composer"
  c.data.data_dir = ""  # TFDS data dir; "" -> $MIRJAX_DATA_DIR or ~/.cache/mirjax/tfds
  c.data.manual_dir = ""  # the dataset's folder, as distributed
  c.data.sample_rate = 16000  # all but "embedded": audio is resampled to this rate, Hz
  c.data.clip_seconds = 10.0  # "folder": files are cut into clips of this length, seconds
  c.data.convention = "clean"  # "mtat": which clips count: "clean", "pons" or "all"
  c.data.top_k = 50  # "mtat": the most frequent tags kept
  c.data.fold = 1  # "esc50": the test fold (1-5); the next one validates
  c.data.crop_seconds = 3.0  # length of training crops and evaluation chunks, seconds
  c.data.read_threads = 2  # host threads reading and cropping examples
  # fraction of the training split held out before training (every variant of a comparison
  # the same); gradient blending measures its held-out losses there, the others ignore it
  c.data.holdout_fraction = 0.0
  c.data.train_subset = 0  # > 0: train on this many of the (remaining) training examples, per seed

  c.model = model  # see mirjax/models

  c.task = ml_collections.ConfigDict()
  c.task.name = "tagging"  # "tagging" (sigmoid, binary cross-entropy) or "classification" (softmax)
  c.task.branches = ("tagging",)  # output branches of the model that carry a loss
  c.task.predict_from = ()  # branches averaged into the prediction; () -> "joint" if any, else all

  c.optim = ml_collections.ConfigDict()
  # "adamw" (warm-up + cosine decay) or "adam_sgd" (Won et al. 2020: Adam, then Nesterov SGD
  # with step drops; mirjax/optim/adam_sgd.py)
  c.optim.name = "adamw"
  c.optim.learning_rate = 1e-3  # peak learning rate after warm-up ("adam_sgd": Adam's, constant)
  c.optim.warmup_steps = 100  # "adamw": linear warm-up steps, then cosine decay to 0 at the last step
  c.optim.warmup_epochs = 0.0  # > 0: warmup_steps in epochs of the training split (train.num_epochs)
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.weight_decay = 1e-4  # "adamw": decoupled decay; "adam_sgd": L2 added to the gradient
  c.optim.clip_norm = 1.0  # clip the combined gradient to this global norm (0: no clipping)
  c.optim.momentum = 0.9  # "adam_sgd": SGD's Nesterov momentum
  c.optim.sgd_boundaries = ()  # "adam_sgd": steps where SGD takes over (the first) and drops its rate
  c.optim.sgd_boundary_epochs = ()  # "adam_sgd": the same in epochs; when set, they give sgd_boundaries
  c.optim.sgd_learning_rates = ()  # "adam_sgd": SGD's learning rate from each boundary on
  c.optim.combine = combine_config()

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 16  # global batch (all devices); a multiple of the device count
  c.train.num_steps = 2000  # optimizer steps
  # > 0: passes over the training split instead; num_steps = ceil(num_epochs * n_train / batch_size)
  # once the data is loaded (every *_epochs field converts so), recorded in results.json
  c.train.num_epochs = 0.0
  c.train.log_every = 20  # steps between training-metric writes
  c.train.eval_every = 500  # steps between validation runs
  c.train.eval_every_epochs = 0.0  # > 0: eval_every in epochs
  c.train.checkpoint_every = 250  # steps between checkpoints (and one at the end)
  c.train.checkpoint_every_epochs = 0.0  # > 0: checkpoint_every in epochs
  c.train.keep_checkpoints = 2  # newest checkpoints kept on disk
  # set by the run when an *_epochs field is used: the training examples an epoch counted
  # (a resumed run must see as many, or its schedule would change)
  c.train.examples_per_epoch = 0
  # validation metric whose best step is kept (WORKDIR/best) and tested: "roc_auc", "pr_auc",
  # "accuracy", "loss", ...; "" tests the last step. Names ending in "loss" (and "eer",
  # "min_dcf") are minimised, the others maximised (jobs/train.py lower_is_better)
  c.train.select_by = ""

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 32  # global evaluation batch of whole clips
  c.eval.n_chunks = 4  # evenly spaced crops per clip whose predictions are averaged (Won et al. 2020)

  c.mesh = ml_collections.ConfigDict()
  c.mesh.num_devices = -1  # data-parallel devices; -1: every device of every process
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrink a config to a seconds-long run on the tiny embedded set (for tests)."""
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
  return c


def tagging(frontend: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """A front-end + short-chunk CNN tagger (configs/sincmodnet.py and its siblings)."""
  c = base(models.default_config(frontend, size="won2020" if arg == "mtat" else "cpu"))
  if arg == "smoke":
    smoke(c)
  elif arg in ("mtat", "mtat_small"):
    won2020(c)
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
    c.train.select_by = "accuracy"
  elif arg:
    raise ConfigError(f"unknown config variant {arg!r}; use ':smoke', ':mtat', ':mtat_small', "
                     "':gtzan' or nothing")
  return c


def won2020(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Won et al. (2020)'s MagnaTagATune protocol (sota-music-tagging-models, training/solver.py):

  59,049-sample crops at 16 kHz (one random crop per clip and step), batch 16, 200 epochs:
  Adam at 1e-4 for 80, then Nesterov SGD (momentum 0.9) at 1e-3, 1e-4 from epoch 100 and
  1e-5 from epoch 120, with L2 weight decay 1e-4 throughout and no clipping; validation
  every epoch, and the test at the best validation step with 16 chunks per clip. A log-mel
  front-end gets their 128 bands. Two differences, both settable: they keep the step of
  lowest validation loss, mirjax the highest ROC-AUC (train.select_by); and they reload
  that best model at each optimiser change, which mirjax does not (optim/adam_sgd.py).
  The back-end size is the caller's (`tagging`: "mtat" published, "mtat_small" CPU-sized).
  """
  c.data.name = "mtat"
  c.data.crop_seconds = 59049 / 16000
  if c.model.get("frontend") is not None and c.model.frontend.name == "logmel":
    c.model.frontend.n_mels = 128
  c.optim.name = "adam_sgd"
  c.optim.learning_rate = 1e-4
  c.optim.weight_decay = 1e-4
  c.optim.clip_norm = 0.0
  c.optim.momentum = 0.9
  c.optim.sgd_boundary_epochs = (80, 100, 120)
  c.optim.sgd_learning_rates = (1e-3, 1e-4, 1e-5)
  c.train.num_epochs = 200  # ~190,000 steps of the clean split's ~15,200 training clips
  c.train.eval_every_epochs = 1
  c.train.checkpoint_every_epochs = 1
  c.train.log_every = 100
  c.train.select_by = "roc_auc"
  c.eval.n_chunks = 16
  return c


MULTIVIEW_VARIANTS = ("blend", "uniform", "concat", "late_fusion")  # plus "single_<view>"


def multiview_variant(c: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """Make `c` (a multi-view config) one of the systems Phan et al. (2021) compare:

    blend          joint head + one head per view, gradient-blending weights
    uniform        the same five branches, uniform weights
    concat         the concatenation network: joint head only
    late_fusion    one head per view, the prediction their average
    single_<view>  one view alone, e.g. single_logmel
  """
  c.optim.combine.name = "uniform"
  c.task.predict_from = ()
  if variant in ("blend", "uniform"):  # "views": one branch per view (models.branch_names)
    c.task.branches = ("joint", "views")
    c.optim.combine.name = "gradient_blending" if variant == "blend" else "uniform"
  elif variant == "concat":
    c.task.branches = ("joint",)
  elif variant == "late_fusion":
    c.task.branches = ("views",)
  elif variant.startswith("single_") and variant[len("single_"):] in c.model.frontends:
    c.model.views = (variant[len("single_"):],)
    c.task.branches = ("views",)
  else:
    raise ConfigError(f"unknown multi-view variant {variant!r}; choose from "
                     f"{list(MULTIVIEW_VARIANTS)} or single_<view> with a view of {sorted(c.model.frontends)}")
  c.variant = variant
  return c


# Worker selections of the self-supervised comparison (mirjax/tasks/reconstruction.py).
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


def ssl_variant(c: ml_collections.ConfigDict, encoder=None, workers=None, weighting=None):
  """Set a pre-training config's encoder (models.ENCODERS), worker selection (WORKER_SETS)
  and loss weighting (WEIGHTINGS); None leaves that part as it is."""
  if encoder is not None:
    c.model.encoder = models.encoder_config(encoder)
  if workers is not None:
    if workers not in WORKER_SETS:
      raise ConfigError(f"unknown worker selection {workers!r}; choose from {sorted(WORKER_SETS)}")
    c.task.branches = WORKER_SETS[workers]
  if weighting is not None:
    if weighting not in WEIGHTINGS:
      raise ConfigError(f"unknown loss weighting {weighting!r}; choose from {sorted(WEIGHTINGS)}")
    c.optim.combine.name = WEIGHTINGS[weighting]
    if weighting == "static":
      for worker in WORKER_SETS["all"]:
        c.optim.combine.weights[worker] = c.optim.combine.weights.get(worker, 1.0)
  c.optim.combine.gradnorm_layer = "['body']['project']"  # the encoder's last (shared) layer
  return c


def ssl(stage="pretrain", encoder="cnn_logmel", workers="all", weighting="equal",
        downstream="tagging", smoke_run=False) -> ml_collections.ConfigDict:
  """A config of configs/ssl.py: pre-training ("pretrain", "compare") or a downstream
  "probe" / "finetune" of a pre-trained encoder (--config.model.pretrained)."""
  from mirjax.data.embedded import LABELS  # pylint: disable=import-outside-toplevel
  model = models.probe_config if stage in ("probe", "finetune") else models.ssl_config
  c = base(model(encoder))
  c.train.num_steps = 1500
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.optim.combine.window = 50  # "dwa": steps per loss-ratio window
  c.eval.n_chunks = 2
  if stage in ("pretrain", "compare"):
    c.task.name = "reconstruction"
    ssl_variant(c, workers=workers, weighting=weighting)
  else:
    c.model.freeze = stage == "probe"
    if downstream != "tagging":
      if downstream not in LABELS:
        raise ConfigError(f"unknown downstream task {downstream!r}; 'tagging' or one of {sorted(LABELS)}")
      c.data.label = downstream
      c.task.name = "classification"
      c.task.branches = ("classification",)
    c.train.num_steps = 1000
  c.compare = ml_collections.ConfigDict()
  # Pre-training runs of the grid, "encoder,workers,weighting" each, probed downstream; and
  # "random": the encoder untrained (the floor pre-training should raise).
  c.compare.grid = tuple(f"cnn_logmel,all,{w}" for w in WEIGHTINGS if w != "static") + (
      "cnn_logmel,spectral,equal", "cnn_logmel,temporal,equal", "pase,all,equal",
      "sincmodnet,all,equal", "random")
  c.compare.downstream = ("tagging", "tempo")  # probes trained on each frozen encoder
  # Each probe is the grid's config (data, seed, batch, eval, mesh, logging: every override
  # given to the grid) with a probe's model and task, then this override set (probe_overrides)
  c.compare.probe = ml_collections.ConfigDict({
      "train": {"num_steps": 600, "eval_every": 600, "checkpoint_every": 600},
      "optim": {"learning_rate": 1e-3, "warmup_steps": 100}})
  if smoke_run:
    smoke(c)
    c.optim.combine.window = 3
    c.compare.grid = ("cnn_logmel,temporal,pcgrad", "random")
    c.compare.probe.train.num_steps = c.compare.probe.train.eval_every = 4
    c.compare.probe.train.checkpoint_every = 4
    c.compare.probe.optim.warmup_steps = 2
  if stage == "compare":
    c.job = "compare_ssl"
  return c


def modulation_tagging(frontend: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """configs/modnet.py and configs/sincmodnet.py: `tagging(frontend, ...)` for the words of
  `arg` ("smoke", "mtat", "mtat_small", "gtzan" or none), and with the word "rates" the
  modulation-rate analysis of that config (`modulation_rates`)."""
  words = [w for w in (arg or "").split(",") if w]
  rest = [w for w in words if w != "rates"]
  if len(rest) > 1:
    raise ConfigError(f"config argument {arg!r}: name at most one of 'smoke', 'mtat', 'mtat_small', "
                     "'gtzan' besides 'rates'")
  c = tagging(frontend, rest[0] if rest else None)
  return modulation_rates(c) if "rates" in words else c


def modulation_rates(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Make a ModNet / SincModNet tagging config the modulation-rate analysis
  (mirjax/jobs/modulation_rates.py): train it (or reuse `analysis.trained`), then score its
  test split with each modulation band kept at rate x its bandwidth."""
  c.job = "modulation_rates"
  c.analysis = ml_collections.ConfigDict()
  c.analysis.trained = ""  # workdir of a finished run to analyse; "" trains this config into WORKDIR/trained
  c.analysis.rates = (0.0, 16.0, 8.0, 4.0, 2.0, 1.0, 0.5)  # x bandwidth; 0 keeps every frame
  c.analysis.split = "test"  # the split scored
  return c


# Data fields a job that reuses a trained run may change: which dataset and how it is read.
# Not data.crop_seconds (the model's chunk length), nor holdout_fraction / train_subset
# (these jobs read each split whole).
REUSED_DATA_FIELDS = ("name", "config", "label", "data_dir", "manual_dir", "sample_rate",
                      "clip_seconds", "convention", "top_k", "fold", "read_threads")


def trained_run_job(job: str) -> ml_collections.ConfigDict:
  """The settings of a job that uses a trained workdir without training it: "eval"
  (mirjax/jobs/evaluate.py, configs/eval.py) and "embed" (mirjax/jobs/embed.py,
  configs/embed.py). Every `data` and `eval` field is unset (None) by default: the trained
  run's own value (from the config saved in its checkpoint) is used, and a field set on
  the command line replaces it, e.g. --config.data.name=folder --config.data.manual_dir=DIR."""
  from ml_collections import config_dict
  c = ml_collections.ConfigDict()
  c.job = job
  c.trained = ""  # workdir of the trained run (required); nothing is ever written there
  # checkpoint scored: "last" (or "-1": the newest), "best" (the step train.select_by kept in
  # TRAINED/best), or a step number such as "1200" (one still on disk)
  c.step = "last"
  # splits read, any of "train", "valid", "test", each whole (--config.splits=valid,test)
  c.splits = ("test",)
  c.data = ml_collections.ConfigDict()  # None: the trained run's value (`base` documents each)
  defaults = base(ml_collections.ConfigDict()).data
  for field in REUSED_DATA_FIELDS:
    c.data[field] = config_dict.placeholder(type(defaults[field]))
  c.eval = ml_collections.ConfigDict()  # None: the trained run's value
  c.eval.batch_size = config_dict.placeholder(int)  # global batch of whole clips
  c.eval.n_chunks = config_dict.placeholder(int)  # evenly spaced crops per clip, averaged
  c.mesh = ml_collections.ConfigDict()
  c.mesh.num_devices = -1  # data-parallel devices; -1: every device of every process
  return c
