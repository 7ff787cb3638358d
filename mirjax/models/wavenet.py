"""WaveNet with local conditioning on a piano roll, and its fast (cached) sampler.

"WaveNet: A Generative Model for Raw Audio" (van den Oord et al., arXiv:1609.03499), as
"Conditioning Deep Generative Raw Audio Models for Structured Automatic Music" (Manzelli et
al., arXiv:1806.09905) conditions it: mu-law classes of the past samples -> a causal
convolution -> layers of dilated causal convolutions (kernel 2, dilations 1, 2, ..., 2^9 per
stack) with gated activation units

  z = tanh(W_f * x + V_f y) . sigmoid(W_g * x + V_g y)     (van den Oord et al., eq. 3)

where y is the piano roll, projected to `cond_channels` per frame and upsampled to the
sample rate (repetition, or a learned transposed convolution), each with a residual and a skip connection -> ReLU, 1x1, ReLU, 1x1 -> logits
over the next sample's 256 classes.

A kernel-2 dilated causal convolution is out_t = A x_{t-d} + B x_t, so generating one sample
needs, per layer, only its input d steps back: `sample` keeps a queue of the last d inputs
of every layer (fast-wavenet's cache; "Fast Wavenet Generation Algorithm", Paine et al.,
arXiv:1611.09482), O(layers) work a sample, inside one `jax.lax.scan`; `sample_naive`
recomputes the whole network for every sample, the reference it is tested against.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mirjax.audio.mulaw import MU, mu_law_encode


def dilations(stacks: int = 2, layers_per_stack: int = 10) -> tuple[int, ...]:
  """1, 2, 4, ..., 2^(layers_per_stack - 1), repeated `stacks` times."""
  return tuple(2 ** i for _ in range(stacks) for i in range(layers_per_stack))


def receptive_field(dils: Sequence[int]) -> int:
  """Samples a prediction sees: the causal input convolution's 2 and every layer's d more."""
  return 2 + sum(dils)


class WaveNet(nn.Module):
  """inputs "audio" (B, T) in [-1, 1] or its mu-law "classes" (B, T) int32 [+ "roll" (B,
  frames, pitches)] -> {branch: logits (B, T, classes)}, the logits at t predicting sample
  t + 1 from samples <= t (and the whole roll)."""
  n_outputs: int = MU + 1  # output channels (`output_width`)
  dilations: tuple = dilations()
  residual: int = 32
  gate: int = 32
  skip: int = 64
  hop: int = 0  # samples per roll frame; 0: no conditioning
  cond_channels: int = 16  # the roll's shared 1x1 projection, before each layer's own
  upsample: str = "repeat"  # "repeat" or "transposed" (a learned transposed convolution)
  input_noise: float = 0.0  # training only: this share of the input samples becomes a random class
  branch: str = "wavenet"

  def setup(self):
    self.embed = nn.Embed(MU + 1, self.residual)  # the input is always a mu-law class
    self.causal = nn.Dense(self.residual, name="causal_now")  # kernel 2: the input and ...
    self.causal_past = nn.Dense(self.residual, use_bias=False, name="causal_past")  # ... one back
    self.now = [nn.Dense(2 * self.gate, name=f"dilated_now_{i}") for i in range(len(self.dilations))]
    self.past = [nn.Dense(2 * self.gate, use_bias=False, name=f"dilated_past_{i}") for i in range(len(self.dilations))]
    self.cond = [nn.Dense(2 * self.gate, use_bias=False, name=f"cond_{i}") for i in range(len(self.dilations))]
    self.res = [nn.Dense(self.residual, name=f"residual_{i}") for i in range(len(self.dilations))]
    self.skips = [nn.Dense(self.skip, name=f"skip_{i}") for i in range(len(self.dilations))]
    self.out1, self.out2 = nn.Dense(self.skip, name="out_1"), nn.Dense(self.n_outputs, name="out_2")
    self.cond_in = nn.Dense(self.cond_channels, name="cond_in")
    if self.hop and self.upsample == "transposed":
      self.up = nn.ConvTranspose(self.cond_channels, (self.hop,), strides=(self.hop,), name="upsample")
    elif self.upsample not in ("repeat", "transposed"):
      raise ValueError(f"upsample {self.upsample!r}: choose 'repeat' or 'transposed'")

  def conditioning(self, roll, length: int):
    """The roll (B, frames, pitches) at the sample rate: (B, length, channels), or None."""
    if not self.hop:
      return None
    h = self.cond_in(roll.astype(jnp.float32))  # (B, frames, cond_channels), a frame at a time
    y = self.up(h) if self.upsample == "transposed" else jnp.repeat(h, self.hop, axis=1)
    if y.shape[1] < length:
      raise ValueError(f"a roll of {roll.shape[1]} frames of {self.hop} samples covers {y.shape[1]} "
                       f"samples, fewer than the {length} asked for")
    return y[:, :length]

  def corrupt(self, q):
    """The classes q (B, T) with each replaced, with probability `input_noise`, by a class
    drawn uniformly (the "dropout" RNG stream): the targets stay clean, so past samples are
    a less reliable guide to the next one and the roll carries more of the prediction."""
    k_where, k_class = jax.random.split(self.make_rng("dropout"))
    noisy = jax.random.bernoulli(k_where, self.input_noise, q.shape)
    return jnp.where(noisy, jax.random.randint(k_class, q.shape, 0, MU + 1, q.dtype), q)

  def _layer(self, i, x, x_past, c):
    """Layer i on inputs x (..., R) and x d steps back; c its conditioning (..., C) or None."""
    h = self.now[i](x) + self.past[i](x_past)
    if c is not None:
      h = h + self.cond[i](c)
    z = jnp.tanh(h[..., :self.gate]) * jax.nn.sigmoid(h[..., self.gate:])
    return x + self.res[i](z), self.skips[i](z)

  def _head(self, skip_sum):
    return self.out2(nn.relu(self.out1(nn.relu(skip_sum))))

  def __call__(self, inputs, train: bool = False):  # pylint: disable=unused-argument
    if "classes" in inputs:
      q = inputs["classes"]
    elif "audio" in inputs:
      q = mu_law_encode(inputs["audio"])
    else:
      raise ValueError(f"model 'wavenet' reads inputs['audio'] (or its mu-law 'classes'); the batch has {sorted(inputs)}")
    if train and self.input_noise > 0:
      q = self.corrupt(q)
    e = self.embed(q)
    shift = lambda v, d: jnp.pad(v, ((0, 0), (d, 0), (0, 0)))[:, :v.shape[1]]  # noqa: E731  v_{t-d}, 0 before t = 0
    x = self.causal(e) + self.causal_past(shift(e, 1))
    if self.hop and "roll" not in inputs:
      raise ValueError(f"this WaveNet is conditioned on a piano roll (inputs['roll']), which the batch lacks "
                       f"(it has {sorted(inputs)}): train it on --config.data.name=aligned, or set "
                       "--config.model.condition=False")
    c = self.conditioning(inputs["roll"], q.shape[1]) if self.hop else None
    skip_sum = 0.0
    for i, d in enumerate(self.dilations):
      x, s = self._layer(i, x, shift(x, d), c)
      skip_sum = skip_sum + s
    return {self.branch: self._head(skip_sum)}

  def step(self, e_now, e_past, queues, t, c_t):
    """One sample through the cached network: e_now / e_past (B, R) the embeddings of samples
    t and t - 1, queues[i] (B, d_i, R) layer i's last d_i inputs (slot t mod d_i holds
    time t - d_i), c_t (B, C) or None. Returns the logits of sample t + 1 and the queues."""
    x = self.causal(e_now) + self.causal_past(e_past)
    skip_sum, new = 0.0, []
    for i, d in enumerate(self.dilations):
      slot = t % d
      past = jax.lax.dynamic_index_in_dim(queues[i], slot, axis=1, keepdims=False)
      new.append(jax.lax.dynamic_update_index_in_dim(queues[i], x, slot, axis=1))
      x, s = self._layer(i, x, past, c_t)
      skip_sum = skip_sum + s
    return self._head(skip_sum), tuple(new)


OUTPUTS = ("softmax", "logistic_mixture")
LOG_SCALE_MIN = -7.0  # the smallest log scale of a mixture component


def output_width(output: str = "softmax", mixtures: int = 10, classes: int = MU + 1) -> int:
  """Channels of the network's output: a logit per class ("softmax"), or the mixture weight
  logits, means and log scales of `mixtures` logistics ("logistic_mixture")."""
  if output not in OUTPUTS:
    raise ValueError(f"WaveNet output {output!r}: choose one of {OUTPUTS}")
  return classes if output == "softmax" else 3 * int(mixtures)


def _mixture(params):
  k = params.shape[-1] // 3
  return params[..., :k], params[..., k:2 * k], jnp.maximum(params[..., 2 * k:], LOG_SCALE_MIN)


def logistic_mixture_log_prob(params, q, classes: int = MU + 1):
  """log P(class q) of a discretised mixture of logistics over `classes` equal bins of
  [-1, 1] (class c at 2c / (classes - 1) - 1; the end bins take the tails), params (..., 3K)
  and q (...): "PixelCNN++: Improving the PixelCNN with Discretized Logistic Mixture
  Likelihood and Other Modifications" (arXiv:1701.05517), eq. 2."""
  logit_pi, mu, log_s = _mixture(params.astype(jnp.float32))
  y = (2.0 * jnp.asarray(q, jnp.float32) / (classes - 1) - 1.0)[..., None]
  half = 1.0 / (classes - 1)
  inv_s = jnp.exp(-log_s)
  plus, minus, mid = inv_s * (y - mu + half), inv_s * (y - mu - half), inv_s * (y - mu)
  log_cdf_plus = plus - jax.nn.softplus(plus)  # log sigmoid(plus): the lowest bin's mass
  log_sf_minus = -jax.nn.softplus(minus)  # log (1 - sigmoid(minus)): the highest bin's
  delta = jax.nn.sigmoid(plus) - jax.nn.sigmoid(minus)
  # where the bin's mass underflows, the density at its centre times its width
  log_mid = mid - log_s - 2.0 * jax.nn.softplus(mid) + jnp.log(2.0 * half)
  inner = jnp.where(delta > 1e-5, jnp.log(jnp.maximum(delta, 1e-12)), log_mid)
  q_ = jnp.asarray(q)[..., None]
  log_p = jnp.where(q_ == 0, log_cdf_plus, jnp.where(q_ == classes - 1, log_sf_minus, inner))
  return jax.nn.logsumexp(log_p + jax.nn.log_softmax(logit_pi, axis=-1), axis=-1)


def _draw(key, out, temperature, output: str = "softmax", classes: int = MU + 1):
  """A class per sequence from the network's output at one step: a softmax draw, or a
  component then a logistic draw, quantised (temperature scales the logits, and the scale)."""
  if output == "softmax":
    return jax.random.categorical(key, out / temperature, axis=-1).astype(jnp.int32)
  logit_pi, mu, log_s = _mixture(out.astype(jnp.float32))
  kc, ku = jax.random.split(key)
  comp = jax.random.categorical(kc, logit_pi / temperature, axis=-1)[..., None]
  m = jnp.take_along_axis(mu, comp, axis=-1)[..., 0]
  s = jnp.exp(jnp.take_along_axis(log_s, comp, axis=-1)[..., 0]) * temperature
  u = jax.random.uniform(ku, m.shape, minval=1e-5, maxval=1.0 - 1e-5)
  x = jnp.clip(m + s * (jnp.log(u) - jnp.log1p(-u)), -1.0, 1.0)
  return jnp.clip(jnp.round((x + 1.0) * (classes - 1) / 2.0), 0, classes - 1).astype(jnp.int32)


def sample(model: WaveNet, params, key, batch: int, length: int, roll=None, first=None, temperature: float = 1.0,
           output: str = "softmax"):
  """Generate `length` mu-law classes (B, length) per sequence with cached activations.

  Sample t + 1 is drawn from the output after sample t (`output`: "softmax" logits or a
  "logistic_mixture") with key fold_in(key, t); sample 0 is `first` (B,) (default the class
  of silence). roll: (B, frames, pitches) when conditioned."""
  first = jnp.full((batch,), (MU + 1) // 2, jnp.int32) if first is None else jnp.asarray(first, jnp.int32)
  bound = model.bind(params)
  c = bound.conditioning(roll, length) if model.hop else None
  queues = tuple(jnp.zeros((batch, d, model.residual), jnp.float32) for d in model.dilations)
  zero = jnp.zeros((batch, model.residual), jnp.float32)

  def body(carry, t):
    q_now, e_past, queues = carry
    e_now = bound.embed(q_now)
    c_t = None if c is None else jax.lax.dynamic_index_in_dim(c, t, axis=1, keepdims=False)
    logits, queues = bound.step(e_now, e_past, queues, t, c_t)
    q_next = _draw(jax.random.fold_in(key, t), logits, temperature, output)
    return (q_next, e_now, queues), q_next

  _, rest = jax.lax.scan(body, (first, zero, queues), jnp.arange(length - 1))
  return jnp.concatenate([first[:, None], rest.T], axis=1)


def sample_naive(model: WaveNet, params, key, batch: int, length: int, roll=None, first=None,
                 temperature: float = 1.0, output: str = "softmax"):
  """`sample` by recomputing the whole network over every prefix (O(length^2)): the reference."""
  first = jnp.full((batch,), (MU + 1) // 2, jnp.int32) if first is None else jnp.asarray(first, jnp.int32)
  q = jnp.zeros((batch, length), jnp.int32).at[:, 0].set(first)

  def body(t, q):
    inputs = {"classes": q} if roll is None else {"classes": q, "roll": roll}
    logits = model.apply(params, inputs)[model.branch][:, t]  # sees samples <= t only: causal
    return q.at[:, t + 1].set(_draw(jax.random.fold_in(key, t), logits, temperature, output))

  return jax.lax.fori_loop(0, length - 1, body, q)
