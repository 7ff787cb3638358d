"""From a time-frequency level to a clip's summary features (Dieleman & Schrauwen, ISMIR 2013):
windows of consecutive frames, whitened, encoded against a spherical k-means dictionary
(a convolution of the dictionary over time, then a non-linearity) and pooled over time.
"""
import jax
import jax.numpy as jnp

ENCODERS = ("relu", "triangle", "linear")


def windows(S, width: int):
  """(..., frames, bins) -> (..., frames - width + 1, width * bins): every run of `width`
  consecutive frames, concatenated frame after frame. A level shorter than `width` is
  zero-padded to one window."""
  frames = S.shape[-2]
  if frames < width:
    S = jnp.pad(S, [(0, 0)] * (S.ndim - 2) + [(0, width - frames), (0, 0)])
    frames = width
  return jnp.concatenate([S[..., i:frames - width + 1 + i, :] for i in range(width)], axis=-1)


def encode(z, centroids, kind: str = "relu"):
  """Codes (..., k) of whitened windows z (..., m) against unit centroids (k, m).

    relu      max(0, <z, c_k>): the dictionary as a bank of filters, rectified
    linear    <z, c_k>
    triangle  max(0, mean_j d_j - d_k), d_k = ||z/|z| - c_k|| (Coates, Lee & Ng 2011's
              "triangle" encoder, on the unit sphere the dictionary lives on)
  """
  dots = z @ centroids.T
  if kind == "linear":
    return dots
  if kind == "relu":
    return jax.nn.relu(dots)
  if kind == "triangle":
    cos = dots / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-8)
    d = jnp.sqrt(jnp.maximum(2.0 - 2.0 * cos, 0.0))  # ||u - c||^2 = 2 - 2 cos for unit u, c
    return jax.nn.relu(jnp.mean(d, axis=-1, keepdims=True) - d)
  raise ValueError(f"unknown encoder {kind!r}; choose one of {ENCODERS}")


def pool(codes, poolings=("mean", "max")):
  """(..., time, k) -> (..., len(poolings) * k): each pooling over time, concatenated."""
  ops = {"mean": jnp.mean, "max": jnp.max, "std": jnp.std}
  return jnp.concatenate([ops[p](codes, axis=-2) for p in poolings], axis=-1)
