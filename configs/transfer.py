"""python -m mirjax.main --config=configs/transfer.py --workdir=workdirs/transfer

Transfer learning by supervised pre-training ("Transfer learning by supervised pre-training
for audio-based music classification", van den Oord, Dieleman & Schrauwen, ISMIR 2014;
mirjax/jobs/pretrain.py): the content CNN of configs/recommend.py trained on source tasks
over the embedded training clips (latent factors of the clips x tags matrix, latent factors
of simulated listening data, the tags themselves), then its layers probed on other tasks
against the same network untrained, spherical k-means features and log-mel / MFCC
statistics. One command writes WORKDIR/pretrain.md; it resumes where it stopped.

  python -m mirjax.main --config=configs/transfer.py:smoke --workdir=/tmp/transfer_smoke
  python -m mirjax.main --config=configs/transfer.py:gtzan --config.transfer.manual_dirs.gtzan=/data/gtzan --workdir=workdirs/transfer_gtzan

The argument is comma-separated words:
  smoke                      the whole pipeline on the smoke data, in about two minutes
  gtzan, esc50, nsynth, mtat also probe that dataset (its folder as distributed, named by
                             --config.transfer.manual_dirs.<name>) as a target task
"""
import ml_collections

from mirjax import config as config_lib

DATASETS = ("gtzan", "esc50", "nsynth", "mtat")
WORDS = ("smoke", *DATASETS)
# target tasks: the embedded class labels. tempo, texture and drums are functions of the tags
# (the "tags" source learns what they are made of); composer is not
TARGETS = ("tempo", "texture", "drums", "composer")


def pretrain_config() -> ml_collections.ConfigDict:
  p = ml_collections.ConfigDict()
  p.sources = ("tag_factors", "listening_factors", "tags")  # source tasks (mirjax/jobs/pretrain.py)
  p.seeds = (0, 1, 2)  # every source network is trained from each
  p.split_seed = 0  # draws the source clips' train / valid split (the same for all sources)
  p.valid_fraction = 0.1  # source clips that choose each source network's step
  p.sweeps = 15  # ALS sweeps of both factorisations
  p.tag_factors = 8  # latent factors of the clips x tags matrix (19 tags)
  p.tag_reg, p.tag_alpha = 1.0, 10.0  # its l2 weight and confidence 1 + alpha (a tag is a count of 1)
  p.listening_factors = 32  # latent factors of the simulated listening data
  p.listening_reg, p.listening_alpha = 30.0, 0.25  # the recommend job's choice on validation users (seeds 0, 1)
  p.n_users = 5000  # simulated listeners
  p.kmeans = True  # compare with spherical k-means features learned from the source clips
  return p


def get_config(arg=None):
  words = config_lib.words(arg, WORDS, "configs/transfer.py")
  smoke = "smoke" in words
  c = ml_collections.ConfigDict()
  c.job = "pretrain"
  c.pretrain = pretrain_config()
  # the source network and its training: the recommend job's content CNN
  source = config_lib.from_file("recommend", "smoke" if smoke else "")
  with source.unlocked():
    source.job = "train"
    del source["recommend"]
  c.source = source
  # the unsupervised baseline: configs/kmeans.py's dictionaries, over each clip's first 4 s
  c.kmeans = config_lib.from_file("kmeans", "smoke" if smoke else "").kmeans
  c.kmeans_seconds = 3.0 if smoke else 4.0
  # probes of every layer on every target task (configs/explain.py:transfer's job)
  c.transfer = config_lib.from_file("explain", "transfer,smoke" if smoke else "transfer")
  c.transfer.step = "best"  # each source network at the step its validation chose
  c.transfer.features = ("logmel", "mfcc")  # hand-crafted statistics
  c.transfer.tasks = TARGETS + tuple(w for w in words if w in DATASETS)
  if smoke:
    c.pretrain.seeds, c.pretrain.n_users = (0, 1), 300
    c.pretrain.tag_factors, c.pretrain.listening_factors, c.pretrain.sweeps = 4, 8, 4
    c.transfer.tasks = ("tempo",)
    c.transfer.untrained_seeds = (0,)
    c.transfer.probes = ("linear",)
  return c
