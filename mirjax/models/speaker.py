"""Audio-visual speaker verification models (Sarı et al., "A Multi-View Approach to
Audio-Visual Speaker Verification", ICASSP 2021, arXiv:2102.06291).

Inputs are a dict: ``audio`` (batch, samples) at 16 kHz and ``frames`` (batch, n_frames, H,
W, 3) face crops in [0, 1]. Two encoders map them to embeddings:

  audio   log-mel (mirjax's front-end), per-utterance mean normalisation, a thin ResNet-34-style
          stack of residual basic blocks (wespeaker's ResNet34: widths 32-256, no max-pool),
          attentive statistics pooling over time (Okabe et al., arXiv:1803.10963), a linear
          embedding layer
  visual  a small ResNet on every frame (frames folded into the batch), global average pool,
          pooled over frames (mean, or attention weights over frames), a linear embedding layer

and `AVSpeaker` combines them as one of four variants, each branch giving cosines with a
`margin.CosineClassifier`'s class rows (the margin loss scales and penalises them):

  "audio"      the audio encoder, branch "audio"
  "visual"     the face encoder, branch "visual"
  "fusion"     both encoders; the concatenated embeddings are the joint embedding, branch
               "joint"; optional branches "audio" and "visual" with classifiers of their own
               (what gradient blending weighs)
  "multiview"  both encoders project into one embedding space of the same width and ONE
               classifier weight matrix scores both modalities (the paper's shared
               classifier), branches "audio" and "visual" and optionally "shared", the mean
               of their cosines; audio and face embeddings are then comparable, which is what
               cross-modal verification scores
"""
from collections.abc import Mapping
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mirjax import frontends
from mirjax.errors import ConfigError
from mirjax.models.margin import LOSSES, SCHEDULES, CosineClassifier
from mirjax.models.multiview import JOINT

AUDIO, VISUAL, SHARED = "audio", "visual", "shared"  # modality / branch names
EMBEDDINGS = "embeddings"  # output key of the {modality: embedding} dict
VARIANTS = ("audio", "visual", "fusion", "multiview")
FRAME_POOLS = ("mean", "attentive")
INPUT_KEY = {AUDIO: "audio", VISUAL: "frames"}  # batch field each modality reads
MODALITIES = {"audio": (AUDIO,), "visual": (VISUAL,), "fusion": (AUDIO, VISUAL),
              "multiview": (AUDIO, VISUAL)}  # encoders each variant runs
BRANCHES = {"audio": (AUDIO,), "visual": (VISUAL,), "fusion": (JOINT, AUDIO, VISUAL),
            "multiview": (AUDIO, VISUAL, SHARED)}  # branches each variant can have


def attentive_statistics(h, weights, eps: float = 1e-10):
  """Weighted mean and standard deviation over time, concatenated: (batch, 2 dim).

  mu = sum_t a_t h_t,  sigma = sqrt(sum_t a_t h_t * h_t - mu * mu)  (Okabe et al. 2018)

  Parameters
  ----------
  h : (batch, time, dim) frame-level features
  weights : (batch, time) attention weights a_t summing to 1 over time (or (batch, time,
    dim), one weight per channel)
  eps : floor of the variance before the square root (a zero variance keeps a finite gradient)
  """
  a = weights[..., None] if weights.ndim == h.ndim - 1 else weights
  mean = jnp.sum(a * h, axis=1)
  var = jnp.sum(a * h * h, axis=1) - mean * mean
  return jnp.concatenate([mean, jnp.sqrt(jnp.maximum(var, eps))], axis=-1)


class AttentiveStatsPooling(nn.Module):
  """(batch, time, dim) -> (batch, 2 dim): Okabe et al.'s attentive statistics pooling.

  A scalar score per frame e_t = v^T tanh(W h_t + b) + k, weights a = softmax_t(e), then
  `attentive_statistics` (tanh, one of the paper's two choices; wespeaker's ASTP keeps tanh
  as ReLU converged badly). With ``stats=False`` only the weighted mean (batch, dim).

  Attributes
  ----------
  hidden : int, width of W (default 128)
  stats : bool, weighted standard deviation too (default True)

  The weights are sown as "attention" into "intermediates".
  """
  hidden: int = 128
  stats: bool = True

  @nn.compact
  def __call__(self, h):
    e = nn.Dense(1, name="score")(jnp.tanh(nn.Dense(self.hidden, name="hidden")(h)))[..., 0]
    a = jax.nn.softmax(e, axis=1)
    self.sow("intermediates", "attention", a)
    if not self.stats:
      return jnp.sum(a[..., None] * h, axis=1)
    return attentive_statistics(h, a)


class BasicBlock(nn.Module):
  """ResNet basic block (He et al., arXiv:1512.03385), NHWC: two 3x3 convs with batch norm,
  a 1x1 conv + batch norm on the shortcut when the stride or width changes, ReLU after the sum."""
  width: int
  stride: int = 1
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                     epsilon=1e-5, name=name)
    y = nn.Conv(self.width, (3, 3), strides=self.stride, padding=1, use_bias=False, name="conv1")(x)
    y = nn.relu(norm("bn1")(y))
    y = nn.Conv(self.width, (3, 3), padding=1, use_bias=False, name="conv2")(y)
    y = norm("bn2")(y)
    if self.stride != 1 or x.shape[-1] != self.width:
      x = nn.Conv(self.width, (1, 1), strides=self.stride, use_bias=False, name="shortcut")(x)
      x = norm("shortcut_bn")(x)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """(batch, H, W, C) -> (batch, H', W', widths[-1]): a 3x3 stem conv (stride `stem_stride`),
  then one stage of `blocks[i]` basic blocks of width `widths[i]` per stage, every stage
  after the first halving H and W in its first block; no max-pool (as wespeaker's ResNet).

  Attributes
  ----------
  widths : stage widths (wespeaker's thin ResNet-34: 32, 64, 128, 256)
  blocks : basic blocks per stage (ResNet-34: 3, 4, 6, 3)
  stem_stride : int, stride of the stem conv (default 1)
  bn_momentum : float, BatchNorm running-average momentum (default 0.9: PyTorch's 0.1 update)
  """
  widths: Sequence[int] = (32, 64, 128, 256)
  blocks: Sequence[int] = (3, 4, 6, 3)
  stem_stride: int = 1
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    if len(self.widths) != len(self.blocks) or not self.widths:
      raise ConfigError(f"ResNet widths {tuple(self.widths)} and blocks {tuple(self.blocks)} "
                        "must be non-empty and of one length (one entry per stage)")
    x = nn.Conv(self.widths[0], (3, 3), strides=self.stem_stride, padding=1, use_bias=False,
                name="stem")(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                             epsilon=1e-5, name="stem_bn")(x))
    for i, (width, n) in enumerate(zip(self.widths, self.blocks)):
      for j in range(n):
        x = BasicBlock(width, stride=2 if i > 0 and j == 0 else 1, bn_momentum=self.bn_momentum,
                       name=f"stage{i}_block{j}")(x, train)
    return x


class AudioEncoder(nn.Module):
  """(batch, samples) audio -> (batch, embed_dim) speaker embedding.

  Front-end (batch, frames, mels), minus its mean over frames (per-utterance cepstral-style
  mean normalisation, as wespeaker's CMN) -> ResNet over (frames, mels) -> (frequency,
  channels) flattened per frame -> attentive statistics pooling -> linear embedding.

  Attributes
  ----------
  frontend : front-end module (`frontends.build`, e.g. "logmel")
  resnet : `ResNet` (stem stride 1)
  embed_dim : int, embedding width
  attention_hidden : int, width of the pooling attention's hidden layer
  mean_norm : bool, subtract each utterance's mean over frames (default True)

  The embedding is sown as "embedding" into "intermediates".
  """
  frontend: nn.Module
  resnet: ResNet
  embed_dim: int = 256
  attention_hidden: int = 128
  mean_norm: bool = True

  @nn.compact
  def __call__(self, audio, train: bool = False):
    x = self.frontend(audio, train)  # (batch, frames, features[, channels])
    x = x[..., None] if x.ndim == 3 else x
    if self.mean_norm:
      x = x - jnp.mean(x, axis=1, keepdims=True)
    x = self.resnet(x, train)  # (batch, frames', features', channels')
    x = x.reshape(x.shape[:2] + (-1,))
    x = AttentiveStatsPooling(self.attention_hidden, name="pool")(x)
    emb = nn.Dense(self.embed_dim, name="project")(x)
    self.sow("intermediates", "embedding", emb)
    return emb


class FaceEncoder(nn.Module):
  """(batch, n_frames, H, W, 3) face crops in [0, 1] -> (batch, embed_dim) embedding.

  Every frame goes through the ResNet (frames folded into the batch), is averaged over
  (H', W'), and the frames are pooled: their mean, or ("attentive") an attention-weighted
  mean (Okabe et al.'s scalar frame scores, without the deviation: a clip has few frames).

  Attributes
  ----------
  resnet : `ResNet` (a stem stride of 2 suits crops of 64 pixels and more)
  embed_dim : int, embedding width
  frame_pool : "mean" or "attentive" (default "mean")
  attention_hidden : int, width of the frame attention's hidden layer

  The embedding is sown as "embedding" into "intermediates".
  """
  resnet: ResNet
  embed_dim: int = 256
  frame_pool: str = "mean"
  attention_hidden: int = 128

  @nn.compact
  def __call__(self, frames, train: bool = False):
    if frames.ndim != 5:
      raise ValueError(f"frames must be (batch, n_frames, H, W, channels), got shape {frames.shape}")
    b, n = frames.shape[:2]
    x = frames.reshape((b * n,) + frames.shape[2:]) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
    x = jnp.mean(self.resnet(x, train), axis=(1, 2)).reshape(b, n, -1)
    if self.frame_pool == "mean":
      x = jnp.mean(x, axis=1)
    elif self.frame_pool == "attentive":
      x = AttentiveStatsPooling(self.attention_hidden, stats=False, name="pool")(x)
    else:
      raise ConfigError(f"frame_pool must be one of {list(FRAME_POOLS)}, got {self.frame_pool!r}")
    emb = nn.Dense(self.embed_dim, name="project")(x)
    self.sow("intermediates", "embedding", emb)
    return emb


class AVSpeaker(nn.Module):
  """Speaker models over audio, faces or both: {branch: cosines, "embeddings": {...}}.

  Attributes
  ----------
  variant : one of VARIANTS ("audio", "visual", "fusion", "multiview")
  n_classes : int, training speakers (rows of each classifier)
  branches : the heads to build, a subset of BRANCHES[variant], in the task's order
  audio_encoder : `AudioEncoder`, for every variant but "visual"
  face_encoder : `FaceEncoder`, for every variant but "audio"

  ``__call__(inputs, train)`` takes a dict with "audio" (batch, samples) and/or "frames"
  (batch, n_frames, H, W, 3), as the variant needs (a bare array is taken as "audio"), and
  returns ``{branch: cosines (batch, n_classes)}`` plus ``"embeddings": {modality: (batch,
  dim)}`` ("audio", "visual", and "joint" for "fusion"; the scores verification compares).
  Cosines lie in [-1, 1]: a margin loss (`margin.margin_loss`) scales them; softmax(scale *
  cosines) are class probabilities. A "multiview" model has one parameter
  ``classifier/weight`` (n_classes, dim) for both modalities; the others one
  ``head_<branch>/weight`` per branch. BatchNorm statistics live in ``batch_stats``.
  """
  variant: str
  n_classes: int
  branches: Sequence[str]
  audio_encoder: AudioEncoder | None = None
  face_encoder: FaceEncoder | None = None

  def _check(self):
    if self.variant not in VARIANTS:
      raise ConfigError(f"unknown speaker model variant {self.variant!r}; valid: {list(VARIANTS)}")
    unknown = sorted(set(self.branches) - set(BRANCHES[self.variant]))
    if unknown or not self.branches:
      raise ConfigError(f"variant {self.variant!r} has branches among {list(BRANCHES[self.variant])}; "
                        f"got {list(self.branches)}")
    for modality, encoder in ((AUDIO, self.audio_encoder), (VISUAL, self.face_encoder)):
      if (modality in MODALITIES[self.variant]) != (encoder is not None):
        need = "needs" if encoder is None else "takes no"
        raise ConfigError(f"variant {self.variant!r} {need} a {modality} encoder")

  def embeddings(self, inputs, train: bool = False) -> dict:
    """{modality: embedding (batch, dim)} of the modalities the variant uses."""
    if not isinstance(inputs, Mapping):
      inputs = {INPUT_KEY[AUDIO]: inputs}
    missing = [INPUT_KEY[m] for m in MODALITIES[self.variant] if INPUT_KEY[m] not in inputs]
    if missing:
      raise ValueError(f"variant {self.variant!r} reads inputs {missing}; the batch has {sorted(inputs)}")
    encoders = {AUDIO: self.audio_encoder, VISUAL: self.face_encoder}
    return {m: encoders[m](inputs[INPUT_KEY[m]], train) for m in MODALITIES[self.variant]}

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    self._check()
    emb = self.embeddings(inputs, train)
    if self.variant == "multiview":
      if emb[AUDIO].shape[-1] != emb[VISUAL].shape[-1]:
        raise ConfigError(f"a multi-view model projects both modalities to one width; audio gives "
                          f"{emb[AUDIO].shape[-1]}, visual {emb[VISUAL].shape[-1]}")
      classifier = CosineClassifier(self.n_classes, name="classifier")  # one weight, both modalities
      cos = {m: classifier(emb[m]) for m in (AUDIO, VISUAL)}
      cos[SHARED] = 0.5 * (cos[AUDIO] + cos[VISUAL])
    else:
      if self.variant == "fusion":
        emb[JOINT] = jnp.concatenate([emb[AUDIO], emb[VISUAL]], axis=-1)
        self.sow("intermediates", "joint_embedding", emb[JOINT])
      cos = {b: CosineClassifier(self.n_classes, name=f"head_{b}")(emb[b]) for b in self.branches}
    return {**{b: cos[b] for b in self.branches}, EMBEDDINGS: emb}


# Encoder sizes: "cpu" trains on a 2-core CPU; "resnet34" is wespeaker's thin ResNet-34
# (m_channels 32, blocks 3-4-6-3, 80 mel bands, embedding 256) with a ResNet-18-shaped face
# encoder (our choice: the widths of He et al.'s ResNet-18 on 112-pixel crops).
SIZES = {
    "cpu": dict(n_mels=40, audio_widths=(8, 16, 32, 64), audio_blocks=(1, 1, 1, 1),
                face_widths=(8, 16, 32), face_blocks=(1, 1, 1), face_size=64, n_frames=4,
                embed_dim=64, attention_hidden=32),
    "resnet34": dict(n_mels=80, audio_widths=(32, 64, 128, 256), audio_blocks=(3, 4, 6, 3),
                     face_widths=(64, 128, 256, 512), face_blocks=(2, 2, 2, 2), face_size=112,
                     n_frames=8, embed_dim=256, attention_hidden=128),
}


def speaker_config(variant: str = "multiview", size: str = "cpu") -> ml_collections.ConfigDict:
  """Default (locked) config of an `AVSpeaker` of `variant` (one of VARIANTS) with encoders
  of `size` (a key of SIZES), and its margin loss; `build` makes the module."""
  if variant not in VARIANTS:
    raise ConfigError(f"unknown speaker model variant {variant!r}; valid: {list(VARIANTS)}")
  if size not in SIZES:
    raise ConfigError(f"unknown speaker model size {size!r}; valid: {sorted(SIZES)}")
  s = SIZES[size]
  cfg = ml_collections.ConfigDict()
  cfg.name = "avspeaker"  # model kind
  cfg.variant = variant  # one of VARIANTS: which encoders and how they are combined
  cfg.branches = {"audio": (AUDIO,), "visual": (VISUAL,), "fusion": (JOINT,),
                  "multiview": (AUDIO, VISUAL)}[variant]  # heads, a subset of BRANCHES[variant]
  cfg.embed_dim = s["embed_dim"]  # each modality's embedding width (one space for "multiview")
  cfg.bn_momentum = 0.9  # BatchNorm running-average momentum of both encoders
  cfg.audio = ml_collections.ConfigDict()
  fe = frontends.default_config("logmel")
  fe.n_fft, fe.hop, fe.n_mels = 400, 160, s["n_mels"]  # 25 ms windows every 10 ms (wespeaker's fbank)
  cfg.audio.frontend = fe  # (batch, samples) -> (batch, frames, mels)
  cfg.audio.widths = s["audio_widths"]  # ResNet stage widths
  cfg.audio.blocks = s["audio_blocks"]  # basic blocks per stage
  cfg.audio.attention_hidden = s["attention_hidden"]  # attentive statistics pooling's hidden width
  cfg.audio.mean_norm = True  # subtract each utterance's mean log-mel over frames
  cfg.face = ml_collections.ConfigDict()
  cfg.face.size = s["face_size"]  # face crops are size x size pixels (what the data makes)
  cfg.face.n_frames = s["n_frames"]  # face frames per example
  cfg.face.widths = s["face_widths"]  # ResNet stage widths
  cfg.face.blocks = s["face_blocks"]  # basic blocks per stage
  cfg.face.stem_stride = 2  # stride of the first conv (halves the crop)
  cfg.face.frame_pool = "mean"  # pooling over frames, one of FRAME_POOLS
  cfg.face.attention_hidden = s["attention_hidden"]  # frame attention's hidden width ("attentive")
  cfg.loss = ml_collections.ConfigDict()
  cfg.loss.kind = "aam"  # margin loss, one of margin.LOSSES ("aam": ArcFace, "am": CosFace)
  cfg.loss.margin = 0.2  # final margin m (radians for "aam"; wespeaker's VoxCeleb recipes: 0.2)
  cfg.loss.scale = 32.0  # logit scale s (wespeaker: 32)
  cfg.loss.easy_margin = False  # "aam": margin only where cos > 0 (else wespeaker's continuous fix)
  cfg.loss.initial_margin = 0.0  # margin before the warm-up
  cfg.loss.warmup_start = 1000 if size == "cpu" else 20000  # step the margin starts growing
  cfg.loss.warmup_end = 3000 if size == "cpu" else 40000  # step it reaches `margin` (then fixed)
  cfg.loss.schedule = "exp"  # warm-up curve, one of margin.SCHEDULES
  cfg.lock()
  return cfg


def check_loss(loss_cfg):
  """ConfigError unless the loss section names a known loss and schedule."""
  if loss_cfg.kind not in LOSSES:
    raise ConfigError(f"loss.kind must be one of {list(LOSSES)}, got {loss_cfg.kind!r}")
  if loss_cfg.schedule not in SCHEDULES:
    raise ConfigError(f"loss.schedule must be one of {list(SCHEDULES)}, got {loss_cfg.schedule!r}")


def build(cfg, n_classes: int, branches=None) -> AVSpeaker:
  """`AVSpeaker` from a `speaker_config`; `branches` (the task's) replace ``cfg.branches``."""
  check_loss(cfg.loss)
  if cfg.face.frame_pool not in FRAME_POOLS:
    raise ConfigError(f"face.frame_pool must be one of {list(FRAME_POOLS)}, got {cfg.face.frame_pool!r}")
  uses = MODALITIES.get(cfg.variant, ())
  audio = face = None
  if AUDIO in uses:
    audio = AudioEncoder(
        frontend=frontends.build(cfg.audio.frontend),
        resnet=ResNet(tuple(cfg.audio.widths), tuple(cfg.audio.blocks), stem_stride=1,
                      bn_momentum=cfg.bn_momentum),
        embed_dim=cfg.embed_dim, attention_hidden=cfg.audio.attention_hidden,
        mean_norm=cfg.audio.mean_norm)
  if VISUAL in uses:
    face = FaceEncoder(
        resnet=ResNet(tuple(cfg.face.widths), tuple(cfg.face.blocks), stem_stride=cfg.face.stem_stride,
                      bn_momentum=cfg.bn_momentum),
        embed_dim=cfg.embed_dim, frame_pool=cfg.face.frame_pool,
        attention_hidden=cfg.face.attention_hidden)
  model = AVSpeaker(variant=cfg.variant, n_classes=n_classes,
                    branches=tuple(cfg.branches if branches is None else branches),
                    audio_encoder=audio, face_encoder=face)
  model._check()
  return model
