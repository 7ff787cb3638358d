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
  c.eps = 1e-4  # "gradient_blending": added to the squared overfitting change
  c.holdout_fraction = 0.1  # "gradient_blending": training split carved off as held-out
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

  c.model = model  # see mirjax/models

  c.task = ml_collections.ConfigDict()
  c.task.name = "tagging"  # "tagging" (sigmoid, binary cross-entropy) or "classification" (softmax)
  c.task.branches = ("tagging",)  # output branches of the model that carry a loss
  c.task.predict_from = ()  # branches averaged into the prediction; () -> "joint" if any, else all

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adamw"
  c.optim.learning_rate = 1e-3  # peak learning rate after warm-up
  c.optim.warmup_steps = 100  # linear warm-up steps, then cosine decay to 0 at the last step
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.weight_decay = 1e-4  # decoupled weight decay (AdamW)
  c.optim.clip_norm = 1.0  # clip the combined gradient to this global norm (0: no clipping)
  c.optim.combine = combine_config()

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
  c = base(models.default_config(frontend))
  if arg == "smoke":
    smoke(c)
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
    raise ValueError(f"unknown multi-view variant {variant!r}; choose from "
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
      raise ValueError(f"unknown worker selection {workers!r}; choose from {sorted(WORKER_SETS)}")
    c.task.branches = WORKER_SETS[workers]
  if weighting is not None:
    if weighting not in WEIGHTINGS:
      raise ValueError(f"unknown loss weighting {weighting!r}; choose from {sorted(WEIGHTINGS)}")
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
        raise ValueError(f"unknown downstream task {downstream!r}; 'tagging' or one of {sorted(LABELS)}")
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
  c.compare.probe_steps = 600  # steps of each probe
  if smoke_run:
    smoke(c)
    c.optim.combine.window = 3
    c.compare.grid = ("cnn_logmel,temporal,pcgrad", "random")
    c.compare.probe_steps = 4
  if stage == "compare":
    c.job = "compare_ssl"
  return c


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
