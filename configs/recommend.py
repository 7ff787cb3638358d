"""python -m mirjax.main --config=configs/recommend.py --workdir=workdirs/recommend

Content-based recommendation of cold-start songs ("Deep content-based music
recommendation", van den Oord, Dieleman & Schrauwen, NIPS 2013; mirjax/jobs/recommend.py):
SIMULATED listeners over the embedded clips, WMF of their plays, regressors from each
clip's log-mel to its song's factors (the paper's CNN on 3 s windows, trained by the train
job; a linear model and an MLP on log-mel statistics), and the held-out users' rankings of
the held-out songs scored by mAP@500 and AUC against the WMF upper bound, popularity and
chance.

  python -m mirjax.main --config=configs/recommend.py:smoke --workdir=/tmp/recommend_smoke
  # your own listening data: Taste Profile triplets (user, song, count) whose song ids are
  # the names (without extension) of the audio files in a folder (its tags.csv gives each
  # file's split: valid and test files are the cold-start songs), one clip per file
  python -m mirjax.main --config=configs/recommend.py --config.data.name=folder --config.data.manual_dir=/data/songs --config.data.clip_seconds=30 --config.recommend.plays_file=/data/train_triplets.txt --workdir=workdirs/recommend_real

The argument is comma-separated words:
  smoke        the smoke data and a few hundred users: the whole pipeline in seconds
  cholesky     exact WMF solves instead of conjugate gradients
  log          confidence 1 + alpha log(1 + r / eps) instead of 1 + alpha r
  wpe          the CNN trained with the weighted prediction error instead of the MSE
"""
import ml_collections

from mirjax import config as base, models

WORDS = ("smoke", "cholesky", "log", "wpe")


def recommend_config() -> ml_collections.ConfigDict:
  """The listeners, the factorisation, the content features and the regressors."""
  r = ml_collections.ConfigDict()
  r.plays_file = ""  # a Taste Profile triplet file of real plays ("": simulate listeners)
  r.n_users = 5000  # simulated listeners
  r.seeds = (0, 1, 2)  # each draws its listeners, test users, WMF start and regressor fits
  r.test_user_fraction = 0.2  # users held out: their plays of cold songs are the ground truth
  r.factors = 32  # WMF latent factors
  r.reg = 1.0  # WMF l2 weight (Hu et al.'s lambda), when reg_grid or alpha_grid is empty
  r.alpha = 2.0  # confidence 1 + alpha r (or 1 + alpha log(1 + r / eps)), likewise
  # WMF's (reg, alpha) is chosen from these on validation users. Seeds 0, 1 and 2 chose
  # (30, 0.25), (30, 0.25) and (100, 1); alpha 0.05 and 0.1 (reg 3-100) scored lower on
  # seeds 0 and 1 than 0.25, so the grid's lowest alpha is not cutting off a better one
  r.reg_grid = (10.0, 30.0, 100.0, 300.0)
  r.alpha_grid = (0.25, 1.0, 4.0)
  r.valid_user_fraction = 0.1  # training users whose warm-song plays are half hidden to choose them
  r.confidence = "linear"  # "linear" or "log"
  r.eps = 1.0  # the log confidence's scale
  r.sweeps = 15  # ALS sweeps
  r.solver = "cg"  # "cg" (3 conjugate-gradient steps per row) or "cholesky"
  r.cg_steps = 3
  r.k = 500  # mAP@k
  r.methods = ("wmf_upper_bound", "cnn", "linear", "mlp", "popularity", "random")
  r.clip_seconds = 4.0  # audio whose log-mel statistics the linear and MLP regressors read (an embedded clip)
  r.batch_clips = 64  # clips per batch while computing features
  r.valid_fraction = 0.1  # warm songs that choose the regressors' weight decay
  r.l2_grid = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
  r.probe_steps = 1000  # full-batch Adam steps of each regressor
  r.probe_lr = 1e-2
  r.probe_hidden = 256  # the MLP regressor's hidden units
  return r


def get_config(arg=None):
  flags = base.words(arg, WORDS, "configs/recommend.py")
  # The content CNN (models/content_cnn.py); its log-mel front-end is every content method's
  c = base.base(models.content_cnn_config(n_mels=64, hop=512, n_fft=1024))
  c.job = "recommend"
  c.recommend = recommend_config()
  c.task.name, c.task.branches = "regression", ("regression",)  # the CNN regresses song factors
  c.data.crop_seconds = 3.0  # the CNN's windows (the paper's 3 s), seconds
  c.eval.n_chunks = 2  # windows averaged into a clip's prediction: 0-3 s and 1-4 s of a 4 s clip
  c.train.batch_size = 32  # the CNN's batch, steps and rate
  c.train.num_steps = 2000  # 79 epochs of the 806 songs that train it; the validation MSE chooses the step
  c.train.eval_every = 200
  c.train.checkpoint_every = 200
  c.train.select_by = "mse"  # the step with the lowest validation MSE (the probes' validation songs)
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 50
  if "smoke" in flags:
    base.smoke(c)
    c.data.crop_seconds = 3.0
    c.eval.n_chunks = 1
    c.model.frontend.n_mels = 16
    c.model.backend.channels, c.model.backend.dense = (8, 8, 16), (16,)
    c.train.select_by = "mse"
    r = c.recommend
    r.seeds = (0,)
    r.n_users, r.factors, r.sweeps, r.batch_clips, r.clip_seconds = 300, 8, 4, 16, 3.0
    r.l2_grid, r.probe_steps, r.probe_hidden = (1e-4, 1e-2), 100, 32
    r.reg_grid, r.alpha_grid = (1.0, 10.0), (2.0,)
  if "cholesky" in flags:
    c.recommend.solver = "cholesky"
  if "log" in flags:
    c.recommend.confidence = "log"
  if "wpe" in flags:
    c.task.loss = "wpe"
  return c
