"""Cosine classifiers and margin softmax losses for speaker (and face) embeddings.

A `CosineClassifier` gives the cosines cos(theta_j) = <x / |x|, w_j / |w_j|> between an
embedding and each class's weight row; a margin loss turns them into scaled logits in which
only the target class is penalised, then takes the softmax cross-entropy:

  AAM (ArcFace, Deng et al., arXiv:1801.07698): target s cos(theta_y + m), others s cos(theta_j)
  AM (CosFace, Wang et al., arXiv:1801.09414; AM-softmax, Wang et al., arXiv:1801.05599):
      target s (cos(theta_y) - m), others s cos(theta_j)

The margin is an argument (a traced scalar is fine), so a warm-up schedule such as
`margin_schedule` (wespeaker's MarginScheduler as a pure function of the step) can set it at
every step inside a jitted train step. With margin 0 both losses are the normalised softmax
with scale s.
"""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from mirjax.errors import ConfigError

LOSSES = ("aam", "am")  # margin losses by name
SCHEDULES = ("exp", "linear")  # margin warm-up curves


def l2_normalize(x, axis=-1, eps=1e-12):
  """x / max(|x|, eps) along `axis` (PyTorch's F.normalize)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), eps)


class CosineClassifier(nn.Module):
  """Embedding (batch, dim) -> cosines (batch, n_classes) with each class's weight row.

  Attributes
  ----------
  n_classes : int, rows of the one weight matrix ``weight`` (n_classes, dim)

  Calling the same instance on several embeddings (of one width) shares ``weight``
  between them: the multi-view model's single classifier for both modalities.
  """
  n_classes: int

  @nn.compact
  def __call__(self, x):
    w = self.param("weight", nn.initializers.xavier_uniform(), (self.n_classes, x.shape[-1]))
    return l2_normalize(x) @ l2_normalize(w).T


def _is_target(labels, n_classes):
  """(batch, n_classes) bool, true at each example's label."""
  return jnp.asarray(labels)[:, None] == jnp.arange(n_classes)[None, :]


def aam_logits(cosines, labels, margin, scale, easy_margin: bool = False):
  """Additive angular margin (ArcFace) logits, (batch, n_classes).

  The target class gets s cos(theta_y + m), every other class s cos(theta_j). Where
  theta_y + m > pi, cos(theta + m) would rise again as theta grows; as wespeaker's
  ArcMarginProduct (easy_margin=False) the target logit there is the continuous, still
  decreasing s (cos(theta_y) - 1 - cos(pi - m)), which meets s cos(theta_y + m) = -s at
  theta_y = pi - m. With `easy_margin` the margin applies only where cos(theta_y) > 0 and
  the plain cosine is kept elsewhere (insightface's easy margin).

  Parameters
  ----------
  cosines : (batch, n_classes) float, cos(theta), clipped to [-1, 1] here
  labels : (batch,) int, target classes
  margin : float or scalar array, m in radians (0 gives s cos(theta))
  scale : float, s
  easy_margin : bool (default False)
  """
  c = jnp.clip(cosines, -1.0, 1.0)
  sin = jnp.sqrt(jnp.maximum(1.0 - c * c, 1e-7))  # floor keeps the gradient finite at |c| = 1
  phi = c * jnp.cos(margin) - sin * jnp.sin(margin)  # cos(theta + m) = cos t cos m - sin t sin m
  if easy_margin:
    phi = jnp.where(c > 0.0, phi, c)
  else:
    threshold = jnp.cos(jnp.pi - margin)  # theta + m > pi  <=>  cos(theta) < cos(pi - m)
    phi = jnp.where(c > threshold, phi, c - (1.0 + threshold))
  target = _is_target(labels, c.shape[-1])
  return scale * jnp.where(target, phi, c)


def am_logits(cosines, labels, margin, scale):
  """Additive (cosine) margin logits, (batch, n_classes): s (cos(theta_y) - m) for the
  target, s cos(theta_j) for the others (CosFace / AM-softmax)."""
  target = _is_target(labels, cosines.shape[-1])
  return scale * (cosines - margin * target.astype(cosines.dtype))


def aam_softmax_loss(cosines, labels, margin, scale, easy_margin: bool = False):
  """Per-example AAM-softmax cross-entropy (batch,): -log softmax(aam_logits)_y."""
  return optax.softmax_cross_entropy_with_integer_labels(
      aam_logits(cosines, labels, margin, scale, easy_margin), labels)


def am_softmax_loss(cosines, labels, margin, scale):
  """Per-example AM-softmax cross-entropy (batch,): -log softmax(am_logits)_y."""
  return optax.softmax_cross_entropy_with_integer_labels(
      am_logits(cosines, labels, margin, scale), labels)


def margin_loss(kind: str, cosines, labels, margin, scale, easy_margin: bool = False):
  """Per-example cross-entropy of margin loss `kind`, one of LOSSES ("aam" or "am")."""
  if kind == "aam":
    return aam_softmax_loss(cosines, labels, margin, scale, easy_margin)
  if kind == "am":
    return am_softmax_loss(cosines, labels, margin, scale)
  raise ConfigError(f"unknown margin loss {kind!r}; valid: {list(LOSSES)}")


def margin_schedule(step, final_margin, start_step: int, end_step: int,
                    initial_margin: float = 0.0, kind: str = "exp"):
  """The margin at training step `step` (0-based; an int or a traced scalar).

  As wespeaker's MarginScheduler: `initial_margin` before `start_step`, `final_margin` from
  `end_step` on, and in between initial + (final - initial) r(t / T), t = step - start_step,
  T = end_step - start_step, with r(u) = u ("linear") or r(u) = 1 - 10^(-3 u) ("exp": fast
  at first, 0.999 of the way at u = 1; wespeaker writes it 1 - exp(u log(1e-3 / (1 + 1e-6)))).
  wespeaker's recipes warm the margin from 0 to 0.2 between epochs 20 and 40 of 150
  (examples/voxceleb/v2/conf/resnet.yaml).

  Returns
  -------
  float32 scalar array
  """
  if kind not in SCHEDULES:
    raise ConfigError(f"unknown margin schedule {kind!r}; valid: {list(SCHEDULES)}")
  if end_step < start_step:
    raise ConfigError(f"margin warm-up ends (step {end_step}) before it starts (step {start_step})")
  step = jnp.asarray(step, jnp.float32)
  u = jnp.clip((step - start_step) / max(end_step - start_step, 1), 0.0, 1.0)
  ratio = u if kind == "linear" else 1.0 - jnp.exp(u * np.log(1e-3))
  margin = initial_margin + (final_margin - initial_margin) * ratio
  margin = jnp.where(step < start_step, initial_margin, margin)
  return jnp.where(step >= end_step, final_margin, margin).astype(jnp.float32)
