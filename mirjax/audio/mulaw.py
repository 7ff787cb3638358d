"""mu-law companding of audio in [-1, 1] to mu + 1 = 256 classes, as the WaveNet paper
("WaveNet: A Generative Model for Raw Audio", van den Oord et al., arXiv:1609.03499) and
librosa's `mu_compress` / `mu_expand` with quantize=True, classes shifted to 0..mu."""
import jax.numpy as jnp

MU = 255


def mu_law_encode(x, mu: int = MU):
  """int32 classes 0..mu of audio x in [-1, 1] (librosa's class + (mu + 1) // 2)."""
  x = jnp.clip(jnp.asarray(x, jnp.float32), -1.0, 1.0)
  y = jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(float(mu))  # f(x) = sgn(x) ln(1 + mu|x|) / ln(1 + mu)
  edges = jnp.linspace(-1.0, 1.0, mu + 1)
  return jnp.clip(jnp.searchsorted(edges, y, side="left"), 0, mu).astype(jnp.int32)  # edges[q-1] < y <= edges[q]


def mu_law_decode(q, mu: int = MU):
  """Audio in [-1, 1] of classes 0..mu (librosa's `mu_expand` of the class - (mu + 1) // 2)."""
  y = (jnp.asarray(q, jnp.float32) - (mu + 1) // 2) * 2.0 / (mu + 1)
  return jnp.sign(y) * jnp.expm1(jnp.abs(y) * jnp.log1p(float(mu))) / mu  # f^-1(y) = sgn(y) ((1 + mu)^|y| - 1) / mu
