"""Multi-task self-supervised pre-training of music encoders (Wu et al., "Multi-task
self-supervised pre-training for music classification", ICASSP 2021): an encoder and
PASE-style workers that reconstruct hand-crafted features of its input (waveform,
log-power spectrum, MFCC, log-mel, chroma, tempogram, prosody, spectral contrast), their
losses weighted by an optax transformation, then downstream probes.

  python -m mirjax.main --config=configs/ssl.py --workdir=workdirs/ssl
  python -m mirjax.main --config=configs/ssl.py:pase,gradnorm,spectral --workdir=workdirs/ssl_pase
  python -m mirjax.main --config=configs/ssl.py:probe --config.model.pretrained=workdirs/ssl --workdir=workdirs/ssl_probe
  python -m mirjax.main --config=configs/ssl.py:finetune,tempo --config.model.pretrained=workdirs/ssl --workdir=workdirs/ssl_ft
  python -m mirjax.main --config=configs/ssl.py:compare --workdir=workdirs/ssl_grid

The argument is comma-separated words: an encoder (cnn_logmel (default), pase,
sincmodnet), a worker selection (all (default), spectral, temporal, pase), a weighting
(equal (default), static (--config.optim.combine.weights.<worker>=w), uncertainty, gradnorm,
dwa, pcgrad), a stage (pre-training by default; "probe" or "finetune" a pre-trained
encoder, whose run --config.model.pretrained names; or "compare": the grid of
mirjax/jobs/compare.py), a downstream task for probe / finetune ("tagging" (default) or an
embedded class label: texture, tempo, drums, composer), and "smoke".
Pre-training reads the embedded data's audio (labels unused) or, with
--config.data.name=audio --config.data.manual_dir=DIR, any folder of audio files.
"""
from mirjax import config as base, models
from mirjax.data.embedded import LABELS


def get_config(arg=None):
  known = {"encoder": models.ENCODERS, "workers": tuple(base.WORKER_SETS),
           "weighting": tuple(base.WEIGHTINGS), "stage": ("probe", "finetune", "compare"),
           "downstream": ("tagging",) + tuple(LABELS), "smoke_run": ("smoke",)}
  picked = {}
  for w in [w for w in (arg or "").split(",") if w]:
    kind = [k for k, vs in known.items() if w in vs]
    if not kind or kind[0] in picked:
      raise ValueError(f"config argument {arg!r}: {w!r} is unknown or repeated; words: {known}")
    picked[kind[0]] = w
  if "smoke_run" in picked:
    picked["smoke_run"] = True
  return base.ssl(**picked)
