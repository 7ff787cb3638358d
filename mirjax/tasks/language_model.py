"""Next-token prediction over event tokens (mirjax/data/symbolic.py), and next-sample
prediction of mu-law audio (`Waveform`, a WaveNet's task).

An example's `tokens` (length + 1) are its model inputs; the logits at position t predict
token t + 1, and PAD targets (after a piece's EOS) are left out. Held-out splits are scored by
their mean cross-entropy per token (nats), so perplexity = exp(loss) and bits per token =
loss / ln 2 are per token exactly: every batch's loss counts with its number of tokens.
"""
import jax
import jax.numpy as jnp
import numpy as np

from mirjax.data import symbolic


def real_targets(tokens, mask=None):
  """(B, T - 1) float32: 1 where token t + 1 is a target (not PAD, and mask true)."""
  real = tokens[:, 1:] != symbolic.PAD
  if mask is not None:
    real = real & mask.astype(bool)[:, None]
  return real.astype(jnp.float32)


def token_cross_entropy(logits, tokens, mask=None):
  """(sum of -log p(token t+1 | tokens <= t) over real targets, their count): logits
  (B, T, V) of tokens (B, T); targets equal to PAD and examples where mask is false count
  nowhere."""
  logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]  # -log p(token t+1 | tokens <= t)
  real = real_targets(tokens, mask)
  return jnp.sum(nll * real), jnp.sum(real)


class LanguageModel:
  """One branch whose loss is the mean next-token cross-entropy over real targets."""
  target = None
  label_free = True

  def __init__(self, vocab_size: int, branches=("lm",)):
    self.n_outputs = int(vocab_size)
    self.branches = tuple(branches)

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    out = {}
    for b in self.branches:
      total, count = token_cross_entropy(outputs[b], batch["tokens"], batch.get("mask"))
      out[b] = total / jnp.maximum(count, 1.0)
    return out

  def count(self, batch):
    """What a batch's loss is a mean over: its real targets (`steps.eval_losses`)."""
    return jnp.sum(real_targets(batch["tokens"], batch.get("mask")))

  def predict(self, outputs):
    return outputs

  def summarize(self, losses: np.ndarray) -> dict:
    """Held-out metrics from the mean cross-entropy per token of each branch."""
    loss = float(np.mean(losses))
    return {"loss": loss, "perplexity": float(np.exp(loss)), "bits_per_token": loss / float(np.log(2.0))}


class Waveform:
  """Next-sample prediction of audio as mu-law classes (a WaveNet): the output at sample t
  (logits, or a discretised mixture of logistics) predicts the class of sample t + 1. Held-out splits report the mean cross-entropy per
  sample as `loss` (nats) and `bits_per_sample`."""
  target = None
  label_free = True

  def __init__(self, classes: int = 256, branches=("wavenet",), output: str = "softmax", mixtures: int = 10):
    from mirjax.models import wavenet  # pylint: disable=import-outside-toplevel
    self.classes, self.output = int(classes), output
    self.n_outputs = wavenet.output_width(output, mixtures, classes)
    self.branches = tuple(branches)

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    # pylint: disable=import-outside-toplevel
    from mirjax.audio.mulaw import mu_law_encode
    from mirjax.models import wavenet
    q = mu_law_encode(batch["audio"], self.classes - 1)
    out = {}
    for b in self.branches:
      if self.output == "softmax":
        logp = jax.nn.log_softmax(outputs[b][:, :-1].astype(jnp.float32), axis=-1)
        nll = -jnp.take_along_axis(logp, q[:, 1:, None], axis=-1)[..., 0]  # -log p(x_{t+1} | x_<=t)
      else:  # the same classes under a discretised mixture of logistics
        nll = -wavenet.logistic_mixture_log_prob(outputs[b][:, :-1], q[:, 1:], self.classes)
      real = self._real(batch, nll.shape)
      out[b] = jnp.sum(nll * real) / jnp.maximum(jnp.sum(real), 1.0)
    return out

  @staticmethod
  def _real(batch, shape):
    mask = batch.get("mask")
    return jnp.ones(shape, jnp.float32) if mask is None else jnp.broadcast_to(
        mask.astype(jnp.float32)[:, None], shape)

  def count(self, batch):
    """Predicted samples of a batch: (T - 1) per real example (`steps.eval_losses`)."""
    b, t = batch["audio"].shape[:2]
    return jnp.sum(self._real(batch, (b, t - 1)))

  def predict(self, outputs):
    return outputs

  def summarize(self, losses: np.ndarray) -> dict:
    loss = float(np.mean(losses))
    return {"loss": loss, "bits_per_sample": loss / float(np.log(2.0))}
