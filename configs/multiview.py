"""python -m mirjax.main --config=configs/multiview.py --workdir=workdirs/multiview

Multi-view classification with gradient blending (Phan et al., "Multi-view audio and
music classification", ICASSP 2021) on the embedded data: log-mel, gammatone, constant-Q
and raw-waveform views, one sub-network each, a joint head on the concatenated embedding
plus one head per view; branch weights re-estimated from train / held-out loss trends
(Wang, Tran & Feiszli, CVPR 2020).

  python -m mirjax.main --config=configs/multiview.py:tempo,concat --workdir=workdirs/mv_concat
  python -m mirjax.main --config=configs/multiview.py:texture,compare --workdir=workdirs/mv_texture
  python -m mirjax.main --config=configs/multiview.py:texture,overfit,compare --workdir=workdirs/mv_texture_overfit
  python -m mirjax.main --config=configs/multiview.py:smoke --workdir=/tmp/smoke

The argument is comma-separated words: a task ("texture" (default), "tempo", "drums",
"composer"; mirjax.data.embedded.LABELS), a
variant (`variant`: "blend" (default), "uniform", "concat", "late_fusion", "single_<view>"),
"compare" (run every variant over 3 seeds and write a table: mirjax/jobs/compare.py),
"overfit" (the regime gradient blending is meant for: a quarter of the training clips, so
branches overfit at different speeds; the fused variants over 5 seeds, blending weights
re-estimated every 50 steps) and "smoke" (seconds, for tests).

Every variant holds out the same tenth of the training split (data.holdout_fraction, by
seed): gradient blending measures its held-out losses there, and no variant trains on it,
so all of them see the same training examples.
"""
import ml_collections

from mirjax import config as base, models, overrides

TASKS = ("texture", "tempo", "drums", "composer")
VARIANTS = ("blend", "uniform", "concat", "late_fusion")  # plus "single_<view>"


def variant(name: str, model) -> dict:
  """The override set (mirjax/overrides.py) making this config one of the systems Phan et
  al. (2021) compare:

    blend          joint head + one head per view, gradient-blending weights
    uniform        the same five branches, uniform weights
    concat         the concatenation network: joint head only
    late_fusion    one head per view, the prediction their average
    single_<view>  one view alone, e.g. single_logmel

  "views" in task.branches is one branch per view (models.branch_names). The fused
  variants keep the config's views (--config.model.views); single_<view> keeps one.
  """
  branches = {"blend": ("joint", "views"), "uniform": ("joint", "views"), "concat": ("joint",),
              "late_fusion": ("views",)}
  s = {"variant": name, "task": {"predict_from": ()},
       "optim": {"combine": {"name": "gradient_blending" if name == "blend" else "uniform"}}}
  if name in branches:
    s["task"]["branches"] = branches[name]
  elif name.startswith("single_") and name[len("single_"):] in model.frontends:
    s["task"]["branches"] = ("views",)
    s["model"] = {"views": (name[len("single_"):],)}
  else:
    raise base.ConfigError(f"unknown multi-view variant {name!r}; choose from {list(VARIANTS)} "
                           f"or single_<view> with a view of {sorted(model.frontends)}")
  return s


def get_config(arg=None):
  given = [w for w in (arg or "").split(",") if w]
  picked = [w for w in given if w not in TASKS and w not in ("compare", "smoke", "overfit")]
  words = base.words(",".join(w for w in given if w not in picked),
                     TASKS + ("compare", "smoke", "overfit"), "configs/multiview.py")
  tasks = [w for w in words if w in TASKS]
  if len(tasks) > 1 or len(picked) > 1:
    raise ValueError(f"config argument {arg!r}: name at most one task of {TASKS} and one variant")
  if picked and "compare" in words:
    raise base.ConfigError(f"config argument {arg!r}: a comparison runs every variant of "
                           "compare.variants; name no variant with 'compare'")
  c = base.base(models.multiview_config())
  c.variant = "blend"  # which system of the comparison this is (`variant`)
  c.data.label = tasks[0] if tasks else "texture"
  c.task.name = "classification"
  c.model.backend.channels = (8, 16, 16, 32)  # small sub-networks: four of them train on a CPU
  c.model.backend.dense = 32  # embedding width of each view
  # The experiment on the embedded data: about 15 minutes on a 2-core CPU.
  c.data.crop_seconds = 1.5  # training crops and evaluation chunks, seconds
  c.train.batch_size = 16  # global batch
  c.train.num_steps = 600
  c.train.eval_every = 300
  c.train.checkpoint_every = 300
  c.optim.learning_rate = 1e-3  # AdamW's peak after a linear warm-up, then cosine decay to 0
  c.optim.warmup_steps = 100
  c.optim.combine.window = 100  # about 2 epochs of the embedded training split at batch 16
  c.optim.combine.smoothing = 0.5
  c.eval.n_chunks = 2
  c.data.holdout_fraction = 0.1  # every variant: blending's held-out part, trained on by none
  c.compare = ml_collections.ConfigDict()
  c.compare.variants = ("single_logmel", "single_gammatone", "single_cqt", "single_rawconv",
                        "concat", "late_fusion", "uniform", "blend")  # run by job "compare"
  # name -> override set (mirjax/overrides.py): every variant, and single_<view> for every view
  c.compare.overrides = {v: variant(v, c.model)
                         for v in VARIANTS + tuple(f"single_{view}" for view in c.model.frontends)}
  c.compare.seeds = (0, 1, 2)  # each variant is trained once per seed
  # test metrics tabulated (mean and standard deviation over seeds); balanced accuracy is
  # the mean per-class recall, telling a model apart from always answering the commonest class
  c.compare.metrics = ("accuracy", "balanced_accuracy")
  if "overfit" in words:
    c.data.train_subset = 224  # of the 806 left: 14 batches an epoch, 43 epochs in 600 steps
    c.optim.combine.window = 50  # about 3.5 epochs between re-estimations
    c.compare.variants = ("concat", "late_fusion", "uniform", "blend")
    c.compare.seeds = (0, 1, 2, 3, 4)
  if "smoke" in words:
    base.smoke(c)
    c.optim.combine.window = 4
    c.optim.combine.start_step = 0  # a dozen steps never let batch-norm averages settle
    c.compare.seeds = (0, 1)
    c.compare.variants = ("single_logmel", "blend")
  if "compare" in words:
    c.job = "compare"
  return overrides.apply(c, variant(picked[0] if picked else "blend", c.model))
