"""Model registry: ``default_config(frontend_name)``, ``multiview_config(views)`` and
``build(model_cfg, n_outputs, branches)``."""
import dataclasses

import jax.numpy as jnp
import ml_collections

from mirjax import frontends
from mirjax.models import speaker
from mirjax.models.content_cnn import ContentCNN
from mirjax.models.dieleman import Dieleman1D
from mirjax.models.fcn import FCN, SampleCNN
from mirjax.models.lstm import LSTMLanguageModel
from mirjax.models.mlp import MLPTagger
from mirjax.models.wavenet import WaveNet, dilations as wavenet_dilations
from mirjax.models.multiview import JOINT, MultiView
from mirjax.models.short_chunk_cnn import ShortChunkCNN
from mirjax.models.ssl import Conv1dBody, Conv2dBody, Encoder, Probe, SSLModel
from mirjax.models.tagger import Tagger
from mirjax.errors import ConfigError

BACKENDS = {"short_chunk_cnn": ShortChunkCNN, "dieleman1d": Dieleman1D, "fcn": FCN,
            "samplecnn": SampleCNN, "content_cnn": ContentCNN}
MODELS = ("tagger", "multiview", "ssl", "probe", "avspeaker", "mlp", "lstm", "wavenet")
ENCODERS = ("cnn_logmel", "pase", "sincmodnet")  # self-supervised encoders (models/ssl.py)
VIEWS = ("logmel", "gammatone", "cqt", "rawconv", "mfcc", "chroma")  # front-ends a view can be


# Short-chunk CNN sizes, (conv block widths, dense width): "cpu" trains on the embedded data
# on a 2-core CPU; "won2020" is the published one (Won et al. 2020; ShortChunkCNN of
# sota-music-tagging-models: n_channels = 128, doubled at blocks 3 and 7, dense 4 n_channels).
SHORT_CHUNK_SIZES = {"cpu": ((32, 32, 64, 64, 128), 128),
                     "won2020": ((128, 128, 256, 256, 256, 256, 512), 512)}


def default_config(frontend_name: str = "sincmodnet", size: str = "cpu") -> ml_collections.ConfigDict:
  """Default (locked) Tagger config around front-end ``frontend_name`` (default the
  flagship "sincmodnet") and a short-chunk CNN of ``size`` (a key of SHORT_CHUNK_SIZES);
  see `frontends.default_config` for the front-end fields."""
  if size not in SHORT_CHUNK_SIZES:
    raise ConfigError(f"unknown back-end size {size!r}; valid: {sorted(SHORT_CHUNK_SIZES)}")
  cfg = ml_collections.ConfigDict()
  cfg.name = "tagger"  # model kind, one of MODELS
  cfg.frontend = frontends.default_config(frontend_name)  # (batch, time) -> features
  cfg.backend = _backend_config(*SHORT_CHUNK_SIZES[size])
  cfg.lock()
  return cfg


def _backend_config(channels=SHORT_CHUNK_SIZES["cpu"][0],
                    dense=SHORT_CHUNK_SIZES["cpu"][1]) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.name = "short_chunk_cnn"  # back-end kind, one of BACKENDS
  cfg.channels = channels  # conv block widths; each block pools 2x2
  cfg.dense = dense  # hidden dense width (the embedding of a multi-view sub-network)
  cfg.dropout = 0.5  # dropout rate before the output layer
  cfg.bn_momentum = 0.99  # BatchNorm running-average momentum
  return cfg


def dieleman_backend_config() -> ml_collections.ConfigDict:
  """Dieleman & Schrauwen (2014)'s 1-D back-end (models/dieleman.py), the paper's sizes."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "dieleman1d"  # back-end kind, one of BACKENDS
  cfg.channels = (32, 32)  # filters of each 1-D conv block over time
  cfg.kernel_size = 8  # conv filter length, frames
  cfg.pool = 4  # max-pooling by this over time after each conv
  cfg.dense = 100  # hidden dense width (the embedding of a sub-network)
  cfg.input_norm = True  # per-feature BatchNorm of the input (see Dieleman1D for why)
  cfg.bn_momentum = 0.99  # its running-average momentum
  return cfg


def dieleman_config(frontend: str = "rawconv", length: int = 256, stride: int = 256,
                    n_features: int = 128, feature_pool: int = 1) -> ml_collections.ConfigDict:
  """Default (locked) Tagger config of Dieleman & Schrauwen (2014): raw audio or a log-mel
  spectrogram, first-layer window ``length`` and ``stride`` in samples, ``n_features``
  learned filters or mel bands, through the 1-D back-end.

  frontend : "rawconv" (kernel_size = length, hop = stride, feature_pool) or "logmel"
    (n_fft = length, hop = stride, n_mels = n_features)
  """
  if frontend not in ("rawconv", "logmel"):
    raise ConfigError(f"Dieleman & Schrauwen's inputs are 'rawconv' or 'logmel', got {frontend!r}")
  if frontend == "logmel" and feature_pool != 1:
    raise ConfigError("feature_pool pools learned filters: a 'rawconv' option, not 'logmel'")
  cfg = default_config(frontend)
  fe = cfg.frontend
  fe.hop = stride
  if frontend == "rawconv":
    fe.kernel_size, fe.n_filters, fe.feature_pool = length, n_features, feature_pool
  else:
    fe.n_fft, fe.n_mels = length, n_features
  cfg.backend = dieleman_backend_config()
  return cfg


def fcn_config() -> ml_collections.ConfigDict:
  """Default (locked) Tagger config of a fully convolutional network (Choi et al. 2016,
  models/fcn.py) on log-mel, sized for a CPU."""
  cfg = default_config("logmel")
  cfg.backend = ml_collections.ConfigDict()
  cfg.backend.name = "fcn"  # back-end kind, one of BACKENDS
  cfg.backend.channels = (32, 64, 64, 128)  # conv block widths
  cfg.backend.pools = ((4, 2), (4, 2), (4, 3), (4, 4))  # (time, frequency) pooling per block
  cfg.backend.dropout = 0.5  # dropout rate before the output layer
  cfg.backend.bn_momentum = 0.99  # BatchNorm running-average momentum
  return cfg


def content_cnn_config(n_mels: int = 128, hop: int = 512, n_fft: int = 1024) -> ml_collections.ConfigDict:
  """Default (locked) Tagger config of van den Oord et al. (2013)'s content CNN
  (models/content_cnn.py) on a log-mel of ``n_mels`` bands, window ``n_fft`` and hop ``hop``
  samples: 1-D convs over time, global mean/max/L2 pooling, dense layers; sized for a CPU."""
  cfg = default_config("logmel")
  cfg.frontend.n_fft, cfg.frontend.hop, cfg.frontend.n_mels = n_fft, hop, n_mels
  cfg.backend = ml_collections.ConfigDict()
  cfg.backend.name = "content_cnn"  # back-end kind, one of BACKENDS
  cfg.backend.channels = (64, 64, 128)  # widths of the 1-D convs over time
  cfg.backend.kernel_size = 4  # their length, frames
  cfg.backend.pools = (4, 2)  # max-pooling over time after each conv but the last
  cfg.backend.dense = (256,)  # hidden dense widths after the global pooling
  # dropout before the linear output layer: none. With 0.25 the validation R^2 of the
  # recommend job's factors (seed 0, 1,000 steps) was 0.002, without it 0.022
  cfg.backend.dropout = 0.0
  cfg.backend.input_norm = True  # per-band BatchNorm of the log-mel
  cfg.backend.bn_momentum = 0.99  # its running-average momentum
  return cfg


def samplecnn_config() -> ml_collections.ConfigDict:
  """Default (locked) Tagger config of a sample-level CNN (Lee et al. 2017, models/fcn.py):
  the "rawconv" front-end as its first layer (32 filters of 3 samples, stride 3, ReLU), then
  length-3 conv blocks, sized for a CPU."""
  cfg = default_config("rawconv")
  fe = cfg.frontend
  fe.kernel_size, fe.hop, fe.n_filters, fe.compression = 3, 3, 32, "relu"
  cfg.backend = ml_collections.ConfigDict()
  cfg.backend.name = "samplecnn"  # back-end kind, one of BACKENDS
  cfg.backend.channels = (32, 32, 64, 64, 64, 64, 64, 64, 128)  # length-3 conv blocks, each pools by 3
  cfg.backend.dropout = 0.5  # dropout rate before the output layer
  cfg.backend.bn_momentum = 0.99  # BatchNorm running-average momentum
  return cfg


def mlp_config(hidden: int = 512, dropout: float = 0.5) -> ml_collections.ConfigDict:
  """Default (locked) config of an MLP tagger on a feature dataset's summary vectors
  (models/mlp.py; data.name = "features"): one hidden layer, dropout."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "mlp"  # model kind, one of MODELS
  cfg.input_dim = 0  # the features' width D; 0: the dataset's (set when the run starts)
  cfg.hidden = hidden  # hidden layer width
  cfg.dropout = dropout  # dropout rate after the hidden layer
  cfg.lock()
  return cfg


def lstm_config(width: int = 256, layers: int = 2, dropout: float = 0.1) -> ml_collections.ConfigDict:
  """Default (locked) config of the LSTM language model over event tokens (models/lstm.py;
  data.name = "notes" or "midi")."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "lstm"  # model kind, one of MODELS
  cfg.width = width  # embedding and LSTM width
  cfg.layers = layers  # stacked LSTMs
  cfg.dropout = dropout  # dropout on the embedding and after every LSTM
  cfg.condition_on_style = False  # True: add an embedding of the piece's style (corpus / sub-folder)
  cfg.styles = 0  # the dataset's style count, set when the run starts
  cfg.example_length = 16  # tokens of the example `init` sees (any length trains)
  cfg.lock()
  return cfg


def wavenet_config(stacks: int = 2, layers_per_stack: int = 10, residual: int = 32, gate: int = 32,
                   skip: int = 64) -> ml_collections.ConfigDict:
  """Default (locked) config of the conditioned WaveNet (models/wavenet.py; data.name = "aligned")."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "wavenet"  # model kind, one of MODELS
  cfg.sample_rate = 16000  # Hz of the audio it models
  cfg.stacks = stacks  # stacks of dilations 1, 2, ..., 2^(layers_per_stack - 1)
  cfg.layers_per_stack = layers_per_stack
  cfg.residual = residual  # residual channels
  cfg.gate = gate  # channels of each half of the gated unit
  cfg.skip = skip  # skip channels
  cfg.condition = True  # condition on the piano roll (inputs["roll"])
  cfg.cond_channels = 16  # the roll's shared projection per frame, before each layer's own
  cfg.upsample = "repeat"  # roll frames to samples: "repeat" or "transposed" (learned)
  cfg.hop = 0  # samples per roll frame; 0: the data's (data.hop), set when the run starts
  cfg.input_noise = 0.0  # training only: this share of input samples replaced by random classes (not in the paper)
  cfg.lock()
  return cfg


# Models whose whole config one builder makes from its defaults: a saved run of one of them
# that predates a field ran as the field's default does (config.with_defaults).
SELF_CONTAINED = {"mlp": mlp_config, "lstm": lstm_config, "wavenet": wavenet_config}


def multiview_config(views=("logmel", "gammatone", "cqt", "rawconv")) -> ml_collections.ConfigDict:
  """Default (locked) MultiView config: `views` each through its own sub-network.

  Every view of `VIEWS` has a front-end config under ``frontends`` (so ``--config.model.views``
  can pick any of them); each sub-network is a short-chunk CNN encoder sized by ``backend``.
  """
  cfg = ml_collections.ConfigDict()
  cfg.name = "multiview"  # model kind, one of MODELS
  cfg.views = tuple(views)  # the views used, names from VIEWS
  cfg.frontends = ml_collections.ConfigDict(
      {v: frontends.default_config(v) for v in VIEWS if v in frontends.FRONTENDS})
  cfg.backend = _backend_config(channels=(16, 16, 32, 32, 64), dense=64)  # per view
  cfg.dropout = 0.5  # dropout on each head's input
  cfg.lock()
  return cfg


def _build_backend(cfg, n_outputs):
  """Back-end module from its config plus the number of outputs."""
  fields = dict(cfg)
  name = fields.pop("name", None)
  if name not in BACKENDS:
    raise ConfigError(f"unknown back-end {name!r}; valid: {sorted(BACKENDS)}")
  cls = BACKENDS[name]
  valid = {f.name for f in dataclasses.fields(cls)
           if f.init and f.name not in ("parent", "name", "n_outputs")}
  unknown = sorted(set(fields) - valid)
  if unknown:
    raise ConfigError(f"unknown fields {unknown} for back-end {name!r}; valid: {sorted(valid)}")
  if "channels" in fields:
    fields["channels"] = tuple(fields["channels"])
  if "pools" in fields:  # (time, frequency) pairs (fcn) or time factors (content_cnn)
    fields["pools"] = tuple(tuple(p) if isinstance(p, (tuple, list)) else int(p) for p in fields["pools"])
  if isinstance(fields.get("dense"), (tuple, list)):
    fields["dense"] = tuple(fields["dense"])
  return cls(n_outputs=n_outputs, **fields)


def encoder_config(name: str = "cnn_logmel") -> ml_collections.ConfigDict:
  """A self-supervised encoder: a front-end and a body giving a frame sequence.

    cnn_logmel  log-mel -> 2-D conv blocks pooling frequency only (stride 256 samples)
    pase        SincNet filter bank -> 1-D conv blocks over time, as PASE (stride 256)
    sincmodnet  SincModNet -> the flagship's short-chunk conv stack, pooling time and
                frequency 2x per block (stride 256 x 2^blocks)
  """
  if name not in ENCODERS:
    raise ConfigError(f"unknown encoder {name!r}; valid: {list(ENCODERS)}")
  cfg = ml_collections.ConfigDict()
  cfg.name = name  # one of ENCODERS
  frontend = {"cnn_logmel": "logmel", "pase": "sincnet", "sincmodnet": "sincmodnet"}[name]
  cfg.frontend = frontends.default_config(frontend)  # (batch, time) -> features
  cfg.body = ml_collections.ConfigDict()
  cfg.body.kind = "conv1d" if name == "pase" else "conv2d"  # conv blocks over time, or time x freq
  cfg.body.channels = {"cnn_logmel": (16, 32, 64), "pase": (128, 128, 128),
                       "sincmodnet": (16, 16, 32, 32, 64)}[name]  # widths of the conv blocks
  cfg.body.time_pools = 5 if name == "sincmodnet" else 0  # conv2d: blocks that also halve time
  cfg.body.dim = 128  # the encoder's output width
  return cfg


def ssl_config(encoder: str = "cnn_logmel") -> ml_collections.ConfigDict:
  """Default (locked) config of an encoder with self-supervised workers (the task's branches)."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "ssl"  # model kind, one of MODELS
  cfg.encoder = encoder_config(encoder)
  cfg.hidden = 128  # width of each worker's hidden layer
  cfg.lock()
  return cfg


def probe_config(encoder: str = "cnn_logmel") -> ml_collections.ConfigDict:
  """Default (locked) config of an encoder pooled into a head, frozen (a probe) or not."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "probe"  # model kind, one of MODELS
  cfg.encoder = encoder_config(encoder)
  cfg.pretrained = ""  # workdir of a pre-training run whose encoder (config and weights) is used
  cfg.freeze = True  # True: a probe on the frozen encoder; False: fine-tune it too
  cfg.head = "linear"  # "linear" or "mlp"
  cfg.hidden = 256  # the mlp head's hidden width
  cfg.lock()
  return cfg


def build_encoder(cfg) -> Encoder:
  body = dict(cfg.body)
  kind = body.pop("kind")
  body["channels"] = tuple(body["channels"])
  if kind == "conv1d":
    body.pop("time_pools", None)
    return Encoder(frontend=frontends.build(cfg.frontend), body=Conv1dBody(**body))
  if kind != "conv2d":
    raise ConfigError(f"encoder body kind must be 'conv1d' or 'conv2d', got {kind!r}")
  return Encoder(frontend=frontends.build(cfg.frontend), body=Conv2dBody(**body))


def encoder_stride(model_cfg) -> int:
  """Samples per output frame of an "ssl" or "probe" model's encoder."""
  enc = model_cfg.encoder
  pools = enc.body.time_pools if enc.body.kind == "conv2d" else 0
  return enc.frontend.hop * 2 ** pools


def sample_rate(model_cfg) -> int:
  """The audio rate in Hz a model's front-ends expect (every view of a multi-view model)."""
  if model_cfg.name == "multiview":
    rates = {model_cfg.frontends[v].sample_rate for v in model_cfg.views}
    if len(rates) != 1:
      raise ConfigError(f"the views' front-ends disagree on sample_rate: {sorted(rates)}")
    return rates.pop()
  if model_cfg.name in ("ssl", "probe"):
    return model_cfg.encoder.frontend.sample_rate
  if model_cfg.name == "avspeaker":
    return model_cfg.audio.frontend.sample_rate
  if model_cfg.name in ("mlp", "lstm"):
    return 0  # it reads features or tokens, not audio: any rate
  if model_cfg.name == "wavenet":
    return model_cfg.sample_rate
  return model_cfg.frontend.sample_rate


def describe_backend(model_cfg) -> str:
  """One line naming a model's back-end and its sizes (its integer fields), for results:
  e.g. "short_chunk_cnn channels=128,128,256,256,256,256,512 dense=512"."""
  if model_cfg.name in ("ssl", "probe"):
    name, fields = f"{model_cfg.encoder.name} encoder", model_cfg.encoder.body
  elif model_cfg.name == "avspeaker":
    name, fields = f"{model_cfg.variant} speaker model: audio ResNet", model_cfg.audio
  elif model_cfg.name in ("mlp", "lstm", "wavenet"):
    name, fields = model_cfg.name, model_cfg
  else:
    name, fields = model_cfg.backend.name, model_cfg.backend
  if model_cfg.name == "multiview":
    name = f"{len(model_cfg.views)} views x {name}"
  is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
  sizes = [f"{k}={','.join(map(str, v))}" if isinstance(v, (tuple, list)) else f"{k}={v}"
           for k, v in fields.items()
           if is_int(v) or (isinstance(v, (tuple, list)) and v and all(map(is_int, v)))]
  return " ".join([name, *sizes])


def branch_names(model_cfg, branches) -> tuple:
  """The task's branches with the word "views" replaced by the model's views, in order
  (so a multi-view config keeps its heads right whatever --config.model.views says)."""
  views = tuple(model_cfg.views) if model_cfg.name == "multiview" else ()
  out = []
  for b in branches:
    out += list(views) if b == "views" else [b]
  return tuple(out)


def example_inputs(model_cfg, crop: int) -> dict:
  """Zero inputs of one example (mirjax/inputs.py) that `model_cfg`'s model reads, for
  `init`: audio of `crop` samples, and face frames for a model that sees faces; an "mlp"
  reads features of its input_dim."""
  if model_cfg.name == "mlp":
    if model_cfg.input_dim < 1:
      raise ConfigError("model.input_dim is unset: a run sets it from its feature dataset")
    return {"features": jnp.zeros((1, model_cfg.input_dim), jnp.float32)}
  if model_cfg.name == "lstm":
    return {"tokens": jnp.zeros((1, model_cfg.example_length), jnp.int32), "style": jnp.zeros((1,), jnp.int32)}
  out = {"audio": jnp.zeros((1, crop), jnp.float32)}
  if model_cfg.name == "wavenet" and model_cfg.condition:
    if model_cfg.hop < 1:
      raise ConfigError("model.hop is unset: a run sets it from data.hop")
    out["roll"] = jnp.zeros((1, -(-crop // model_cfg.hop), 128), jnp.float32)
  if model_cfg.name == "avspeaker" and speaker.VISUAL in speaker.MODALITIES[model_cfg.variant]:
    out["frames"] = jnp.zeros((1, model_cfg.face.n_frames, model_cfg.face.size, model_cfg.face.size, 3),
                              jnp.float32)
  return out


def build(model_cfg, n_outputs, branches=("tagging",), dims=()):
  """Model from a config with fields ``name`` and the fields of that kind.

  Parameters
  ----------
  model_cfg : ConfigDict, from `default_config` ("tagger": ``frontend``, ``backend``) or
    `multiview_config` ("multiview": ``views``, ``frontends``, ``backend``, ``dropout``)
  n_outputs : int, number of output logits (tags or classes) of each branch
  branches : the task's output branches; a "tagger" or "probe" has exactly one, a
    "multiview" model any of "joint" and its views, an "ssl" model one per worker
  dims : "ssl": each worker's output width

  Returns
  -------
  a linen Module whose ``apply`` gives ``{branch: logits (batch, n_outputs)}``
  """
  if model_cfg.name not in MODELS:
    raise ConfigError(f"unknown model {model_cfg.name!r}; valid: {list(MODELS)}")
  if model_cfg.name == "avspeaker":
    return speaker.build(model_cfg, n_outputs, branches)
  if model_cfg.name == "mlp":
    if len(branches) != 1:
      raise ConfigError(f"model 'mlp' has one output branch; the task asks for {list(branches)}")
    return MLPTagger(n_outputs=n_outputs, hidden=model_cfg.hidden, dropout=model_cfg.dropout, branch=branches[0])
  if model_cfg.name == "lstm":
    if len(branches) != 1:
      raise ConfigError(f"model 'lstm' has one output branch; the task asks for {list(branches)}")
    if model_cfg.condition_on_style and model_cfg.styles < 1:
      raise ConfigError("model.styles is unset: a run sets it from its dataset's styles")
    return LSTMLanguageModel(n_outputs=n_outputs, width=model_cfg.width, layers=model_cfg.layers,
                             dropout=model_cfg.dropout, branch=branches[0],
                             styles=model_cfg.styles if model_cfg.condition_on_style else 0)
  if model_cfg.name == "wavenet":
    if len(branches) != 1:
      raise ConfigError(f"model 'wavenet' has one output branch; the task asks for {list(branches)}")
    if model_cfg.condition and model_cfg.hop < 1:
      raise ConfigError("model.hop is unset: a run sets it from data.hop")
    return WaveNet(n_outputs=n_outputs, dilations=wavenet_dilations(model_cfg.stacks, model_cfg.layers_per_stack),
                   residual=model_cfg.residual, gate=model_cfg.gate, skip=model_cfg.skip,
                   hop=model_cfg.hop if model_cfg.condition else 0, upsample=model_cfg.upsample,
                   cond_channels=model_cfg.cond_channels, input_noise=float(model_cfg.input_noise),
                   branch=branches[0])
  if model_cfg.name == "ssl":
    return SSLModel(encoder=build_encoder(model_cfg.encoder), workers=tuple(branches),
                    dims=tuple(dims), hidden=model_cfg.hidden)
  if model_cfg.name == "probe":
    if len(branches) != 1:
      raise ConfigError(f"model 'probe' has one output branch; the task asks for {list(branches)}")
    return Probe(encoder=build_encoder(model_cfg.encoder), n_outputs=n_outputs, branch=branches[0],
                 head=model_cfg.head, freeze=model_cfg.freeze, hidden=model_cfg.hidden)
  if model_cfg.name == "multiview":
    views = tuple(model_cfg.views)
    unknown = sorted(set(views) - set(model_cfg.frontends))
    if unknown or not views:
      raise ConfigError(f"model.views {list(views)}: each must be one of {sorted(model_cfg.frontends)}")
    return MultiView(views=views, frontends=[frontends.build(model_cfg.frontends[v]) for v in views],
                     encoders=[_build_backend(model_cfg.backend, None) for _ in views],
                     branches=tuple(branches), n_outputs=n_outputs, dropout=model_cfg.dropout)
  unknown = sorted(set(model_cfg.keys()) - {"name", "frontend", "backend"})
  if unknown:
    raise ConfigError(f"unknown fields {unknown} for model 'tagger'; valid: "
                     "['backend', 'frontend', 'name']")
  if len(branches) != 1:
    raise ConfigError(f"model 'tagger' has one output branch; the task asks for {list(branches)}")
  return Tagger(frontend=frontends.build(model_cfg.frontend),
                backend=_build_backend(model_cfg.backend, n_outputs), branch=branches[0])
