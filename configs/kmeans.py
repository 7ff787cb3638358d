"""python -m mirjax.main --config=configs/kmeans.py --workdir=workdirs/kmeans

Multiscale feature learning with spherical k-means ("Multiscale approaches to music audio
feature learning", Dieleman & Schrauwen, ISMIR 2013; mirjax/jobs/kmeans.py): a Laplacian
pyramid of log-mel spectrograms, windows of 1, 2 and 4 frames of every level PCA-whitened, a
spherical k-means dictionary per level and width, features pooled over time (mean, max),
then an MLP tagger (one hidden layer, dropout) on them.

  python -m mirjax.main --config=configs/kmeans.py:gaussian,scale=0 --workdir=workdirs/kmeans_g0
  python -m mirjax.main --config=configs/kmeans.py:multires,k=64 --workdir=workdirs/kmeans_mr
  python -m mirjax.main --config=configs/kmeans.py:compare --workdir=workdirs/kmeans_compare
  python -m mirjax.main --config=configs/kmeans.py:mtat --config.data.manual_dir=/data/magnatagatune --workdir=workdirs/kmeans_mtat
  python -m mirjax.main --config=configs/kmeans.py:smoke --workdir=/tmp/kmeans_smoke

The argument is comma-separated words:
  multires | gaussian | laplacian  the representation (default laplacian)
  all | scale=N (repeatable)       which levels (default all; scale=0 is the finest)
  window=N (repeatable)            window widths in frames (default 1, 2, 4)
  k=N                              atoms per dictionary; k=0 (or "pca"): no k-means, the
                                   pooled whitened windows are the features (the baseline)
  compare                          the paper's table: representation x scales, with the
                                   PCA baseline, 3 seeds each (WORKDIR/comparison.md)
  smoke | mtat                     seconds-long tiny data | MagnaTagATune's top 50 tags
The trained workdir is an ordinary one: configs/eval.py scores it, configs/embed.py exports
the MLP's hidden layer ("embedding"); WORKDIR/features/ is the learned feature dataset
(--config.data.name=features --config.data.manual_dir=WORKDIR/features trains any "mlp" on it).
"""
import ml_collections

from mirjax import config as base, models
from mirjax.errors import ConfigError

REPRESENTATIONS = ("multires", "gaussian", "laplacian")
SCALE_SUBSETS = ("all", "0", "1", "2", "3")  # the comparison's rows per representation


def kmeans_config() -> ml_collections.ConfigDict:
  """What the features are made of (mirjax/jobs/kmeans.py)."""
  k = ml_collections.ConfigDict()
  k.representation = "laplacian"  # "multires", "gaussian" or "laplacian" (mirjax/audio/multiscale.py)
  k.n_ffts = (1024, 2048, 4096, 8192)  # window sizes, samples: one level each for "multires"; the pyramids use the first
  k.hop_length = 512  # samples between frames (32 ms at 16 kHz)
  k.n_mels = 64  # mel bands
  k.compression = 1e4  # log(1 + c x) of the mel power
  k.levels = 4  # pyramid levels ("gaussian", "laplacian"); level l has frames 2^l times as long
  k.scales = "all"  # levels used: "all" or comma-separated indices, e.g. "0" or "1,3"
  k.windows = (1, 2, 4)  # window widths in frames; a dictionary per level and width
  k.windows_per_clip = 32  # windows sampled from each training clip to fit whitening and k-means
  k.pca_components = 0  # whitened dimensions kept (0: all)
  k.whitening_eps = 0.01  # regulariser, times the mean variance, added to every variance before whitening
  k.k = 200  # atoms (centroids) per dictionary; 0: no k-means (the whitened windows pooled)
  k.init = "kmeans++"  # "kmeans++" or "sample"
  k.iterations = 30  # Lloyd iterations (mini-batch: epochs)
  k.minibatch_size = 0  # > 0: mini-batch k-means on batches of this many windows (Sculley 2010); 0: full Lloyd
  k.encoder = "relu"  # "relu" (rectified dot products), "triangle" (Coates & Ng) or "linear"
  k.poolings = ("mean", "max")  # summaries over time of each atom's activations
  k.batch_clips = 64  # clips per batch while making features; a multiple of the devices
  return k


def _words(arg):
  got = [w for w in (arg or "").split(",") if w]
  fixed = ("compare", "smoke", "mtat", "all", "pca", *REPRESENTATIONS)
  out = {"flags": [], "scales": [], "windows": [], "k": None}
  for w in got:
    name, _, value = w.partition("=")
    if w in fixed and w not in out["flags"]:
      out["flags"].append(w)
    elif name in ("scale", "window", "k") and value.isdigit():
      if name == "k":
        out["k"] = int(value)
      else:
        out[name + "s"].append(int(value))
    else:
      raise ConfigError(f"configs/kmeans.py: config argument {arg!r}: {w!r} is unknown or repeated; "
                        f"the words are {list(fixed)} and scale=N, window=N, k=N")
  reps = [w for w in out["flags"] if w in REPRESENTATIONS]
  if len(reps) > 1 or ("all" in out["flags"] and out["scales"]):
    raise ConfigError(f"configs/kmeans.py:{arg}: one representation and either 'all' or scale=N words")
  return out


def get_config(arg=None):
  w = _words(arg)
  flags = w["flags"]
  c = base.base(models.mlp_config(hidden=512, dropout=0.5))
  c.job = "kmeans"
  c.kmeans = kmeans_config()
  # The experiment on the embedded default data (~1,100 clips of 4 s)
  c.data.crop_seconds = 4.0  # audio analysed per clip, seconds (from its start; zero-padded)
  c.train.batch_size = 32  # global batch of clips' feature vectors
  c.train.num_steps = 600  # 21 epochs of the 896 training clips
  c.train.eval_every = 100
  c.train.checkpoint_every = 300
  c.train.select_by = "roc_auc"  # test the step of best validation ROC-AUC
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 50
  c.optim.weight_decay = 1e-2
  c.eval.n_chunks = 1  # a clip is one feature vector
  if "smoke" in flags:
    base.smoke(c)
    c.data.crop_seconds = 3.0  # the smoke clips' length
    c.kmeans.n_ffts = (512, 1024)
    c.kmeans.n_mels, c.kmeans.levels, c.kmeans.k = 16, 3, 8
    c.kmeans.windows, c.kmeans.windows_per_clip, c.kmeans.iterations = (1, 2), 8, 5
    c.kmeans.batch_clips = 16
    c.model.hidden = 32
    c.train.select_by = ""
    c.eval.n_chunks = 1
  if "mtat" in flags:
    base.protocol(c, ["mtat"])
    c.model = models.mlp_config(hidden=1000, dropout=0.5)
    c.data.crop_seconds = 29.0  # the whole MagnaTagATune clip
    c.kmeans.n_mels, c.kmeans.levels, c.kmeans.windows_per_clip = 128, 5, 20
    c.train.batch_size, c.train.num_steps, c.train.select_by = 64, 20_000, "roc_auc"
    c.optim.name, c.optim.learning_rate, c.optim.warmup_steps = "adamw", 1e-3, 200
    c.eval.n_chunks = 1
  if len([f for f in flags if f in ("smoke", "mtat")]) > 1:
    raise ConfigError("configs/kmeans.py: 'smoke' and 'mtat' are different data; choose one")
  for rep in REPRESENTATIONS:
    if rep in flags:
      c.kmeans.representation = rep
  if w["scales"]:
    c.kmeans.scales = ",".join(map(str, sorted(set(w["scales"]))))
  if w["windows"]:
    c.kmeans.windows = tuple(sorted(set(w["windows"])))
  if w["k"] is not None:
    c.kmeans.k = w["k"]
  if "pca" in flags:
    c.kmeans.k = 0
  # The paper's comparison: every representation x scale subset, and whitened windows
  # without k-means, each with the same data, feature budget, MLP and model selection.
  c.compare = ml_collections.ConfigDict()
  n_scales = len(c.kmeans.n_ffts) if c.kmeans.representation == "multires" else c.kmeans.levels
  subsets = ["all"] + [str(s) for s in range(min(n_scales, len(c.kmeans.n_ffts), c.kmeans.levels))]
  if "smoke" in flags:
    subsets = ["all", "0"]
  variants = {}
  for rep in REPRESENTATIONS:
    for s in subsets:
      variants[f"{rep}_{s}"] = {"kmeans": {"representation": rep, "scales": s}}
  variants["pca_laplacian_all"] = {"kmeans": {"representation": "laplacian", "scales": "all", "k": 0}}
  c.compare.variants = tuple(variants)  # table rows
  c.compare.overrides = variants  # name -> override set (mirjax/overrides.py)
  c.compare.variant_job = "kmeans"  # each variant is a kmeans run (features, then the MLP)
  c.compare.seeds = (0,) if "smoke" in flags else (0, 1, 2)
  c.compare.metrics = ("roc_auc", "pr_auc")
  if "compare" in flags:
    c.job = "compare"
  return c
