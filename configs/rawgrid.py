"""python -m mirjax.main --config=configs/rawgrid.py:compare --workdir=workdirs/rawgrid

Dieleman & Schrauwen (ICASSP 2014)'s grid: first-layer length / stride in samples, for
raw audio (learned strided convolution) and for log-mel spectrograms with the same window
and hop, each through the same 1-D back-end (configs/rawcnn.py), over several seeds.

  python -m mirjax.main --config=configs/rawgrid.py:compare,mtat --workdir=workdirs/rawgrid_mtat \
      --config.data.manual_dir=/data/magnatagatune
  python -m mirjax.main --config=configs/rawgrid.py:compare,smoke --workdir=/tmp/rawgrid_smoke

Writes WORKDIR/comparison.md: test ROC-AUC and PR-AUC (mean ± std over seeds) per grid
point and input, e.g. rows raw_1024_512 and mel_1024_512; WORKDIR/comparison.csv holds
every run, WORKDIR/<variant>/seed<k>/ each run (filters_sorted.png: the learned filters).
Choose seeds with --config.compare.seeds=(0,1,2,3,4), points with
--config.compare.variants="('raw_512_256','mel_512_256')", and change one point with
--config.compare.overrides.raw_512_256.model.frontend.n_filters=64. Train one point alone
with configs/rawcnn.py:L_S (raw) or configs/rawcnn.py:mel,L_S.

The argument is comma-separated words: "compare" (run the grid; without it this is the
raw 256 / 256 model), and "smoke" (two points, seconds) or "mtat" (the paper's data).
"""
import ml_collections

from mirjax import config as base, models

GRID = ((1024, 1024), (1024, 512), (512, 512), (512, 256), (256, 256))  # (length, stride)
INPUTS = {"raw": "rawconv", "mel": "logmel"}
N_FEATURES = 128  # learned filters, or mel bands, per frame (configs/rawcnn.py)


def point(inp: str, length: int, stride: int) -> ml_collections.ConfigDict:
  """The override set of one grid point: the front-end, whole (raw and mel have other fields)."""
  frontend = models.dieleman_config(INPUTS[inp], length, stride, N_FEATURES).frontend
  return ml_collections.ConfigDict({"model": {"frontend": frontend}})


def get_config(arg=None):
  words = base.words(arg, ("compare", "smoke", "mtat"), "configs/rawgrid.py")
  c = base.base(models.dieleman_config("rawconv", 256, 256, N_FEATURES))
  # Each point's experiment on the embedded data (as configs/rawcnn.py)
  c.data.crop_seconds = 3.0  # training crops and evaluation chunks, seconds
  c.train.batch_size = 16  # global batch
  c.train.num_steps = 2000
  c.train.eval_every = 500
  c.train.checkpoint_every = 250
  c.optim.learning_rate = 1e-3  # AdamW's peak after a linear warm-up, then cosine decay to 0
  c.optim.warmup_steps = 100
  base.protocol(c, words)  # ":smoke" or ":mtat" (mirjax/config.py)
  grid = GRID[:1] if "smoke" in words else GRID  # smoke: 1024 / 1024, the fewest frames
  c.compare = ml_collections.ConfigDict()
  c.compare.variants = tuple(f"{i}_{l}_{s}" for l, s in grid for i in INPUTS)  # table rows
  # name -> override set (mirjax/overrides.py), applied to this config for that variant
  c.compare.overrides = {f"{i}_{l}_{s}": point(i, l, s) for l, s in grid for i in INPUTS}
  c.compare.seeds = (0,) if "smoke" in words else (0, 1, 2)  # each variant trained per seed
  c.compare.metrics = ("roc_auc", "pr_auc")  # test metrics tabulated (mean ± std over seeds)
  if "compare" in words:
    c.job = "compare"
  return c
