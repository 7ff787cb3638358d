"""python -m mirjax.main --config=configs/explain.py --workdir=workdirs/explain

Explainability (Yanchenko et al., "Towards Explainable Convolutional Features for Music
Audio Modeling", arXiv:2106.00110): convolutional features of trained and untrained models
against wavelet scattering and other hand-crafted features, and across tasks.

The command above is the whole study (mirjax/jobs/explain.py), resumable: it trains the
source models (every architecture on every source task), runs the similarity job on each
and the transfer job on all, and writes WORKDIR/study.md. ":smoke" is the same in seconds.
Its parts, one at a time:

  # a source model: an architecture (shortchunk: log-mel short-chunk CNN; fcn: log-mel fully
  # convolutional network; samplecnn: sample-level CNN on raw audio) trained on one task of
  # the embedded data (tags, or the class labels tempo, texture, drums, composer)
  python -m mirjax.main --config=configs/explain.py:shortchunk,tags --workdir=workdirs/explain_shortchunk
  python -m mirjax.main --config=configs/explain.py:samplecnn,tempo --workdir=workdirs/explain_samplecnn_tempo
  # CKA of its layers, trained and untrained (3 seeds), against the hand-crafted features:
  # WORKDIR/cka_linear.csv, cka_rbf.csv and their heatmaps (mirjax/jobs/similarity.py)
  python -m mirjax.main --config=configs/explain.py:similarity --config.trained=workdirs/explain_shortchunk --workdir=workdirs/explain_similarity
  # probes of every layer of several sources on every task (mirjax/jobs/transfer.py)
  python -m mirjax.main --config=configs/explain.py:transfer --config.sources=workdirs/explain_shortchunk,workdirs/explain_samplecnn_tempo --workdir=workdirs/explain_transfer
"""
import ml_collections

from mirjax import config as base, models
from mirjax.errors import ConfigError

ARCHITECTURES = {"shortchunk": lambda: models.default_config("logmel"), "fcn": models.fcn_config,
                 "samplecnn": models.samplecnn_config}
TASKS = ("tags", "tempo", "texture", "drums", "composer")  # embedded data: tags, or a class label
WORDS = (*ARCHITECTURES, *TASKS, "similarity", "transfer", "smoke")
SOURCE_TASKS = ("tags", "tempo")  # the study trains every architecture on each of these


def study_config(smoke: bool = False):
  """The whole study's settings (mirjax/jobs/explain.py)."""
  c = ml_collections.ConfigDict()
  c.job = "explain"
  c.architectures = tuple(ARCHITECTURES)  # source architectures
  c.source_tasks = SOURCE_TASKS  # each architecture is trained on each of these
  c.smoke = smoke  # sources trained with the smoke protocol (seconds, tiny data)
  if smoke:
    c.source_tasks = ("tags",)
  c.seed = 0  # seed of every source run
  c.data_dir = ""  # where the embedded data is kept ("": $MIRJAX_DATA_DIR or the default)
  c.similarity = similarity_config(smoke)
  c.transfer = transfer_config(smoke)
  c.mesh = ml_collections.ConfigDict()
  c.mesh.num_devices = -1
  return c


def similarity_config(smoke: bool = False):
  """The similarity job's settings (mirjax/jobs/similarity.py)."""
  c = base.trained_run_job("similarity")
  c.untrained_seeds = (0, 1, 2)  # the same model initialised from these seeds, untrained
  c.features = ("scattering1", "scattering2", "mfcc", "logmel")  # hand-crafted feature sets
  c.kernels = ("linear", "rbf")  # CKA kernels (rbf: sigma 0.8 of the median distance)
  c.cka_batch = 256  # exact CKA up to this many clips, else the minibatch estimator of this size
  c.scattering = ml_collections.ConfigDict()
  c.scattering.J = 8  # octaves: averaging over 2**J samples (16 ms at 16 kHz)
  c.scattering.Q = 8  # first-order wavelets per octave (second order: 1)
  if smoke:
    c.untrained_seeds = (0, 1)
    c.scattering.J, c.scattering.Q = 6, 4
  return c


def transfer_config(smoke: bool = False):
  """The transfer job's settings (mirjax/jobs/transfer.py)."""
  c = similarity_config(smoke)
  c.job = "transfer"
  del c["trained"], c["splits"], c["kernels"], c["cka_batch"]
  c.sources = ""  # workdirs of trained source runs, comma-separated (--config.sources=workdirs/a,workdirs/b)
  c.tasks = TASKS  # target tasks: embedded-data labels, or "gtzan", "esc50", "nsynth", "mtat"
  c.manual_dirs = ml_collections.ConfigDict({t: "" for t in ("gtzan", "esc50", "nsynth", "mtat")})
  c.layers = ()  # layers probed; (): every block and the embedding
  c.probes = ("linear", "mlp")  # probe kinds (mirjax/evaluation/probes.py)
  c.probe = ml_collections.ConfigDict()
  c.probe.steps = 500  # full-batch Adam steps of every probe
  c.probe.learning_rate = 1e-2
  c.probe.l2_grid = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # weight decays tried, chosen on valid
  c.probe.hidden = 128  # the MLP's hidden width
  if smoke:
    c.probe.steps = 50
    c.tasks = ("tags", "tempo")
  return c


def get_config(arg=None):
  words = base.words(arg, WORDS, "configs/explain.py")
  for job, make in (("similarity", similarity_config), ("transfer", transfer_config)):
    if job in words:
      extra = [w for w in words if w not in (job, "smoke")]
      if extra:
        raise ConfigError(f"configs/explain.py:{job} reads its models from trained workdirs; drop {extra}")
      return make(smoke="smoke" in words)
  if not [w for w in words if w != "smoke"]:
    return study_config(smoke="smoke" in words)
  archs = [w for w in words if w in ARCHITECTURES] or ["shortchunk"]
  tasks = [w for w in words if w in TASKS] or ["tags"]
  if len(archs) > 1 or len(tasks) > 1:
    raise ConfigError(f"configs/explain.py: name one architecture of {list(ARCHITECTURES)} and one task "
                      f"of {list(TASKS)}; got {archs + tasks}")
  c = base.base(ARCHITECTURES[archs[0]]())
  if tasks[0] != "tags":  # one class per clip: softmax classification
    c.data.label = tasks[0]
    c.task.name, c.task.branches = "classification", ("classification",)
  # Each source model on the embedded data: a few minutes on a 2-core CPU.
  c.data.crop_seconds = 3.0
  c.train.batch_size = 16
  c.train.num_steps = 1000
  c.train.eval_every = 500
  c.train.checkpoint_every = 250
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  if "smoke" in words:
    base.smoke(c)
  return c
