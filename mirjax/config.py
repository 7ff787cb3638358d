"""The small base every config under configs/ starts from, and the protocols several share.

A config file is the experiment: it calls `base(model)`, then sets the fields of
EXPERIMENT_FIELDS (learning rate, steps, batch, crop: unset here, and `validate.check`
refuses a run whose config leaves one unset) and whatever else makes its system what it
is; its variants live in that file. The data protocols several tagging configs share are
here (`protocol`):
  "smoke"       a tiny embedded set and a dozen steps: seconds, for tests
  "mtat"        MagnaTagATune from --config.data.manual_dir, Won et al. (2020)'s protocol and
                back-end size (`won2020`)
  "mtat_small"  the same protocol with the CPU-sized back-end
  "gtzan"       GTZAN genres from --config.data.manual_dir, fault-filtered split, classification
"""
import importlib.util
import os

import ml_collections
from ml_collections import config_dict

from mirjax import models
from mirjax.errors import ConfigError

# What every training config states itself (None here); train.num_epochs > 0 stands in for
# train.num_steps.
EXPERIMENT_FIELDS = ("optim.learning_rate", "train.num_steps", "train.batch_size", "data.crop_seconds")
PROTOCOLS = ("smoke", "mtat", "mtat_small", "gtzan")  # `protocol`'s words
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def from_file(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """The config of configs/<name>.py (or a file path) with argument `arg`, as
  `--config=configs/<name>.py:<arg>` gives it (for tests, benchmarks and notebooks)."""
  path = name if name.endswith(".py") else os.path.join(CONFIGS, f"{name}.py")
  if not os.path.exists(path):
    raise ConfigError(f"no config file {path}; the configs are in {CONFIGS}")
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def words(arg: str | None, allowed, config: str) -> list[str]:
  """The comma-separated words of a config argument, each one of `allowed`, none repeated."""
  got = [w for w in (arg or "").split(",") if w]
  bad = [w for w in got if w not in allowed or got.count(w) > 1]
  if bad:
    raise ConfigError(f"{config}: config argument {arg!r}: {bad[0]!r} is unknown or repeated; "
                      f"the words are {list(allowed)}")
  return got


def unset_fields(config) -> list[str]:
  """The EXPERIMENT_FIELDS a training config leaves unset."""
  if "train" not in config:
    return []
  missing = []
  for path in EXPERIMENT_FIELDS:
    section, field = path.split(".")
    if config[section].get(field) is None:
      if path == "train.num_steps" and (config.train.get("num_epochs") or 0) > 0:
        continue
      missing.append(path)
  return missing


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
  """Every field a training run has, around a model config (see mirjax/models): shared
  defaults, and EXPERIMENT_FIELDS unset for the config file to state."""
  c = ml_collections.ConfigDict()
  c.job = "train"  # which job mirjax.main runs: "train" (jobs/train.py) or "compare" (jobs/compare.py)
  c.seed = 0  # seeds parameters, data order, crops and dropout
  # the steps compute in `dtype` ("float32", or "bfloat16": mixed precision with float32
  # parameters, optimizer state, loss and metrics) and keep parameters in `param_dtype`
  c.dtype = "float32"
  c.param_dtype = "float32"

  c.data = ml_collections.ConfigDict()
  # "embedded" (music21 pieces rendered by mirjax), "folder" (your audio + tags.csv),
  # "mtat" (MagnaTagATune), "gtzan", "esc50" or "nsynth"; "notes" (the embedded pieces as
  # event tokens) or "midi" (a folder of MIDI files): all but "embedded" and "notes" read
  # --config.data.manual_dir, the dataset's folder as distributed
  c.data.name = "embedded"
  c.data.config = "default"  # "embedded", "notes" builder config: "default" (~1,100 clips) or "smoke"
  c.data.label = ""  # "embedded": "" (tags) or a class label: "texture", "tempo", "drums", "composer"
  c.data.data_dir = ""  # TFDS data dir; "" -> $MIRJAX_DATA_DIR or ~/.cache/mirjax/tfds
  c.data.manual_dir = ""  # the dataset's folder, as distributed
  c.data.sample_rate = 16000  # all but "embedded": audio is resampled to this rate, Hz
  c.data.clip_seconds = 10.0  # "folder": files are cut into clips of this length, seconds
  c.data.convention = "clean"  # "mtat": which clips count: "clean", "pons" or "all"
  c.data.top_k = 50  # "mtat": the most frequent tags kept
  c.data.fold = 1  # "esc50": the test fold (1-5); the next one validates
  c.data.hop = 128  # "aligned": audio samples per piano-roll frame (mirjax/data/aligned.py)
  c.data.sequence_length = 256  # "notes", "midi": event tokens an example predicts (mirjax/data/symbolic.py)
  c.data.crop_seconds = config_dict.placeholder(float)  # training crops and evaluation chunks, seconds
  c.data.read_threads = 2  # host threads reading and cropping examples
  # 0: training examples are read in this process (read_threads threads); > 0: by this many
  # grain worker processes, read_threads threads each (the same batches, only faster where
  # reading is bound by Python's GIL); evaluation always reads in this process
  c.data.worker_processes = 0
  c.data.build_workers = 0  # processes that build a dataset on first use (decode, render); 0: one per core
  # fraction of the training split held out before training (every variant of a comparison
  # the same); gradient blending measures its held-out losses there, the others ignore it
  c.data.holdout_fraction = 0.0
  c.data.train_subset = 0  # > 0: train on this many of the (remaining) training examples, per seed
  # speaker verification ("avspeakers", "voxceleb"; mirjax/data/speakers.py)
  c.data.trial_list = "veri_test2.txt"  # the trial list scored (VoxCeleb1-O, cleaned)
  c.data.faces = "auto"  # "voxceleb": face layout, "auto", "unzippedIntervalFaces" or "frames"
  c.data.n_frames = 0  # face frames per utterance (0: audio only)
  c.data.face_size = 0  # face crops are face_size x face_size pixels
  c.data.cohort_per_speaker = 3  # training utterances per speaker in the score-normalisation cohort

  c.model = model  # see mirjax/models

  c.task = ml_collections.ConfigDict()
  c.task.name = "tagging"  # "tagging" (sigmoid, binary cross-entropy) or "classification" (softmax)
  c.task.branches = ("tagging",)  # output branches of the model that carry a loss
  c.task.predict_from = ()  # branches averaged into the prediction; () -> "joint" if any, else all
  c.task.output = "softmax"  # "waveform": 256 logits, or "logistic_mixture" (a discretised mixture of logistics)
  c.task.mixtures = 10  # "waveform" with "logistic_mixture": components
  c.task.loss = "mse"  # "regression": "mse", or "wpe" (weighted prediction error; mirjax/tasks/regression.py)

  c.optim = ml_collections.ConfigDict()
  # "adamw" (warm-up + cosine decay) or "adam_sgd" (Won et al. 2020: Adam, then Nesterov SGD
  # with step drops; mirjax/optim/adam_sgd.py)
  c.optim.name = "adamw"
  c.optim.learning_rate = config_dict.placeholder(float)  # peak learning rate after warm-up ("adam_sgd": Adam's, constant)
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
  c.train.batch_size = config_dict.placeholder(int)  # global batch (all devices); a multiple of the device count
  c.train.num_steps = config_dict.placeholder(int)  # optimizer steps
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
  # fully sharded data parallel: every parameter and optimizer-state array of at least
  # fsdp_min_size elements is split over the devices instead of copied to each (mirjax/sharding.py)
  c.mesh.fsdp = False
  c.mesh.fsdp_min_size = 16384
  return c


def with_defaults(saved: dict) -> dict:
  """A config as a run saved it (a dict), with every shared field (`base`, all but the model's
  own, except for the models of `models.SELF_CONTAINED`) that it lacks filled in with
  today's default: a run saved before a field existed ran as that field's default does, so
  it still loads."""
  def fill(d, defaults):
    for k, v in defaults.items():
      if k not in d:
        d[k] = v
      elif isinstance(v, dict) and isinstance(d[k], dict):
        fill(d[k], v)
    return d
  defaults = base(ml_collections.ConfigDict()).to_dict()
  defaults.pop("model")
  out = fill(dict(saved), defaults)
  own = models.SELF_CONTAINED.get(dict(out.get("model") or {}).get("name"))
  if own is not None:  # a model whose config has no sub-configs: its new fields too
    out["model"] = fill(dict(out["model"]), own().to_dict())
  return out


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


def protocol(c: ml_collections.ConfigDict, words) -> ml_collections.ConfigDict:
  """Apply the one shared data protocol among `words` (PROTOCOLS) to a tagging config."""
  picked = [w for w in words if w in PROTOCOLS]
  if len(picked) > 1:
    raise ConfigError(f"name at most one of {list(PROTOCOLS)} (got {picked})")
  if picked == ["smoke"]:
    smoke(c)
  elif picked in (["mtat"], ["mtat_small"]):
    won2020(c, published_size=picked == ["mtat"])
  elif picked == ["gtzan"]:
    gtzan(c)
  return c


def gtzan(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """GTZAN genre classification from --config.data.manual_dir (fault-filtered split)."""
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
  return c


def won2020(c: ml_collections.ConfigDict, published_size: bool = True) -> ml_collections.ConfigDict:
  """Won et al. (2020)'s MagnaTagATune protocol (sota-music-tagging-models, training/solver.py):

  59,049-sample crops at 16 kHz (one random crop per clip and step), batch 16, 200 epochs:
  Adam at 1e-4 for 80, then Nesterov SGD (momentum 0.9) at 1e-3, 1e-4 from epoch 100 and
  1e-5 from epoch 120, with L2 weight decay 1e-4 throughout and no clipping; validation
  every epoch, and the test at the best validation step with 16 chunks per clip. A log-mel
  front-end gets their 128 bands. Two differences, both settable: they keep the step of
  lowest validation loss, mirjax the highest ROC-AUC (train.select_by); and they reload
  that best model at each optimiser change, which mirjax does not (optim/adam_sgd.py).
  `published_size`: a short-chunk back-end gets their widths (models.SHORT_CHUNK_SIZES
  "won2020"); False keeps the config's (CPU-sized) back-end.
  """
  c.data.name = "mtat"
  backend = c.model.get("backend")
  if published_size and backend is not None and backend.name == "short_chunk_cnn":
    backend.channels, backend.dense = models.SHORT_CHUNK_SIZES["won2020"]
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
  c.train.num_steps = None  # from num_epochs once the split's size is known
  c.train.num_epochs = 200  # ~190,000 steps of the clean split's ~15,200 training clips
  c.train.eval_every_epochs = 1
  c.train.checkpoint_every_epochs = 1
  c.train.log_every = 100
  c.train.select_by = "roc_auc"
  c.eval.n_chunks = 16
  return c


def modulation_rates(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The word "rates" of configs/modnet.py and configs/sincmodnet.py: make that tagging config
  the modulation-rate analysis
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
                      "clip_seconds", "convention", "top_k", "fold", "read_threads", "trial_list",
                      "faces", "cohort_per_speaker")


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
