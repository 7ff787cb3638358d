"""An LSTM language model over event tokens (mirjax/data/symbolic.py): the symbolic half of
"Conditioning Deep Generative Raw Audio Models for Structured Automatic Music" (Manzelli,
Thakkar, Siahkamari & Kulis, ISMIR 2018, arXiv:1806.09905), which learns melodic structure
at the note level with an LSTM.

tokens (batch, T) -> embedding (+ a style embedding: the piece's corpus or composer, as an
option) -> `layers` LSTMs of `width` with dropout between them -> logits (batch, T, vocab)
of each next token. `step` runs one token with explicit LSTM states, for sampling.
"""
import flax.linen as nn
import jax.numpy as jnp


class LSTMLanguageModel(nn.Module):
  n_outputs: int  # the vocabulary
  width: int = 256
  layers: int = 2
  dropout: float = 0.1
  styles: int = 0  # > 0: condition on inputs["style"], one of this many
  branch: str = "lm"

  def setup(self):
    self.embed = nn.Embed(self.n_outputs, self.width)
    self.style_embed = nn.Embed(self.styles, self.width) if self.styles else None
    self.rnns = [nn.RNN(nn.OptimizedLSTMCell(self.width), name=f"lstm_{i}") for i in range(self.layers)]
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.n_outputs)

  def _inputs(self, inputs, train):
    if "tokens" not in inputs:
      raise ValueError(f"model 'lstm' reads inputs['tokens'] (a 'notes' or 'midi' dataset); the batch has {sorted(inputs)}")
    x = self.embed(inputs["tokens"])
    if self.style_embed is not None:
      x = x + self.style_embed(inputs["style"])[:, None, :]
    return self.drop(x, deterministic=not train)

  def __call__(self, inputs, train: bool = False):
    x = self._inputs(inputs, train)
    for rnn in self.rnns:
      x = self.drop(rnn(x), deterministic=not train)
    self.sow("intermediates", "embedding", jnp.mean(x, axis=1))
    return {self.branch: self.head(x)}

  def step(self, inputs, carries):
    """Logits (batch, vocab) of the token after inputs["tokens"] (batch, 1), and the new
    LSTM states; carries: one (c, h) per layer (`initial_carries`)."""
    x = self._inputs(inputs, False)
    new = []
    for rnn, carry in zip(self.rnns, carries):
      carry, x = rnn(x, initial_carry=carry, return_carry=True)
      new.append(carry)
    return self.head(x[:, 0]), tuple(new)

  def initial_carries(self, batch: int):
    """Zero LSTM states of every layer for `batch` sequences."""
    zeros = jnp.zeros((batch, self.width), jnp.float32)
    return tuple((zeros, zeros) for _ in range(self.layers))
