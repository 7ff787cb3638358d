"""python -m mirjax.main --config=configs/avsv.py --workdir=workdirs/avsv

Audio-visual speaker verification (Sarı, Singh, Hasegawa-Johnson, "A Multi-View Approach
to Audio-Visual Speaker Verification", ICASSP 2021, arXiv:2102.06291) on the embedded
synthetic speakers (mirjax/data/embedded/avspeakers.py: 48 training and 16 test
identities, VoxCeleb1's layout and trial-list format): a voice encoder (log-mel, thin
ResNet, attentive statistics pooling) and a face encoder (a small ResNet per frame, pooled
over frames), each trained with an additive angular margin softmax, scored by cosine with
AS-norm, EER and minDCF (p_target 0.01) per condition (mirjax/tasks/verification.py).

  python -m mirjax.main --config=configs/avsv.py:fusion --workdir=workdirs/avsv_fusion
  python -m mirjax.main --config=configs/avsv.py:compare --workdir=workdirs/avsv_compare
  python -m mirjax.main --config=configs/avsv.py:voxceleb --config.data.manual_dir=DIR --workdir=workdirs/vox
  python -m mirjax.main --config=configs/avsv.py:smoke --workdir=/tmp/smoke

The argument is comma-separated words: a variant (`variant`: "multiview" (default),
"audio", "visual", "fusion", "score_fusion"), "compare" (every variant over 3 seeds, a table
of EER and minDCF per condition: mirjax/jobs/compare.py), "voxceleb" (VoxCeleb1 from
--config.data.manual_dir at the published model size, see mirjax.data.voxceleb.LAYOUT) and
"smoke" (seconds, for tests).

A run writes WORKDIR/results.json ("test/<condition>/eer", "test/<condition>/min_dcf" for
every condition the model scores; "test/eer", "test/min_dcf" of the first) and the trial
scores of each condition in WORKDIR/scores/<condition>.<trial list>.score, the Kaldi /
wespeaker format (`enrol test score target|nontarget`). To score another trial list of the
folder with a trained run:

  python -m mirjax.main --config=configs/eval.py --config.trained=workdirs/avsv \\
      --config.data.trial_list=list_test_hard2.txt --workdir=workdirs/avsv_hard
"""
import ml_collections

from mirjax import config as base, overrides
from mirjax.models import speaker

VARIANTS = ("multiview", "audio", "visual", "fusion", "score_fusion")


def variant(name: str) -> dict:
  """The override set (mirjax/overrides.py) making this config one of the paper's systems:

    audio         the voice encoder alone (branch "audio")
    visual        the face encoder alone (branch "visual")
    fusion        both encoders, their embeddings concatenated into one joint embedding
                  trained by one classifier (branch "joint"); scored as "fusion"
    score_fusion  both encoders with a classifier each, trained side by side (branches
                  "audio", "visual"); a trial's score is the mean of its two scores
    multiview     both encoders projected into one space, ONE classifier weight matrix for
                  both (branches "audio", "visual"): scores every condition, cross-modal too
  """
  models = {"audio": ("audio", ("audio",)), "visual": ("visual", ("visual",)),
            "fusion": ("fusion", ("joint",)), "score_fusion": ("fusion", ("audio", "visual")),
            "multiview": ("multiview", ("audio", "visual"))}
  if name not in models:
    raise base.ConfigError(f"unknown speaker-verification variant {name!r}; choose from {list(VARIANTS)}")
  model, branches = models[name]
  primary = {"fusion": "fusion", "score_fusion": "score_fusion", "multiview": "fusion"}.get(name, name)
  return {"variant": name,
          "model": {"variant": model, "branches": branches,
                    "face": {"n_frames": 0 if name == "audio" else FRAMES}},
          "task": {"cross_modal": name == "multiview", "primary": primary}}


FRAMES = 4  # face frames per utterance


def get_config(arg=None):
  given = [w for w in (arg or "").split(",") if w]
  picked = [w for w in given if w in VARIANTS]
  words = base.words(",".join(w for w in given if w not in VARIANTS),
                     ("compare", "smoke", "voxceleb"), "configs/avsv.py")
  if len(picked) > 1:
    raise base.ConfigError(f"config argument {arg!r}: name at most one variant of {list(VARIANTS)}")
  if picked and "compare" in words:
    raise base.ConfigError(f"config argument {arg!r}: a comparison runs every variant of "
                           "compare.variants; name no variant with 'compare'")
  size = "resnet34" if "voxceleb" in words else "cpu"
  c = base.base(speaker.speaker_config("multiview", size))
  c.variant = "multiview"  # which system of the comparison this is (`variant`)
  c.data.name = "avspeakers"
  c.data.config = "default"
  c.data.n_frames = c.model.face.get_ref("n_frames")  # the data makes what the model reads
  c.data.face_size = c.model.face.get_ref("size")
  c.data.cohort_per_speaker = 5
  c.task.name = "verification"
  c.task.branches = c.model.get_ref("branches")
  c.task.cross_modal = True  # score enrol-by-voice / test-by-face (shared-space models only)
  c.task.score_norm = "asnorm"  # "asnorm" or "none"
  c.task.top_n = 20  # AS-norm: top cohort scores per utterance (wespeaker: 300 of 5,994 speakers)
  c.task.p_target = 0.01  # minDCF's prior of a target trial (C_miss = C_fa = 1)
  c.task.eer_rule = "interpolate"  # "interpolate" (wespeaker, NIST) or "nearest" (SpeechBrain)
  c.task.primary = "fusion"  # condition reported as test/eer and test/min_dcf
  c.model.face.n_frames = FRAMES
  c.model.face.size = 64
  # The experiment on the embedded speakers: a few minutes per run on a 2-core CPU.
  c.data.crop_seconds = 1.5  # training crops and evaluation chunks, seconds
  c.train.batch_size = 32
  c.train.num_steps = 600
  c.train.eval_every = 600
  c.train.checkpoint_every = 200
  c.train.log_every = 20
  c.optim.learning_rate = 2e-3  # AdamW's peak after a linear warm-up, then cosine decay to 0
  c.optim.warmup_steps = 50
  c.optim.weight_decay = 1e-4
  c.model.loss.warmup_start = 100  # the margin grows from 0 to its final value in between
  c.model.loss.warmup_end = 300
  c.eval.batch_size = 32
  c.eval.n_chunks = 2
  c.compare = ml_collections.ConfigDict()
  c.compare.variants = VARIANTS  # run by job "compare"
  c.compare.overrides = {v: variant(v) for v in VARIANTS}
  c.compare.seeds = (0, 1, 2)
  c.compare.metrics = tuple(f"{cond}/{m}" for cond in ("audio", "visual", "fusion", "score_fusion",
                                                        "cross_audio_visual", "cross_visual_audio")
                            for m in ("eer", "min_dcf"))
  if "voxceleb" in words:  # VoxCeleb1 dev -> VoxCeleb1-O, wespeaker's ResNet-34 recipe sizes
    c.data.name = "voxceleb"
    c.data.crop_seconds = 2.0  # wespeaker: 200 frames
    c.data.cohort_per_speaker = 3
    c.model.face.size = 112
    c.task.top_n = 300
    c.train.batch_size = 128
    c.train.num_steps = 150_000
    c.train.eval_every = 10_000
    c.train.checkpoint_every = 2_000
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 6_000
    c.eval.n_chunks = 10
  if "smoke" in words:
    base.smoke(c)
    c.data.config = "smoke"
    c.data.cohort_per_speaker = 2
    c.model.face.size = 32
    # Two stages per encoder (a strided stage with its shortcut included): a third less to
    # compile than four for each of the five variants, and the tests check the pipeline,
    # not the model's capacity.
    c.model.audio.widths, c.model.audio.blocks = (8, 16), (1, 1)
    c.model.face.widths, c.model.face.blocks = (8, 16), (1, 1)
    c.task.top_n = 4
    c.train.num_steps = 8
    c.model.loss.warmup_start, c.model.loss.warmup_end = 2, 6
    c.compare.seeds = (0,)
  if "compare" in words:
    c.job = "compare"
  return overrides.apply(c, variant(picked[0] if picked else "multiview"))
