"""An LSTM language model over event tokens (mirjax/data/symbolic.py): the symbolic half of
"Conditioning Deep Generative Raw Audio Models for Structured Automatic Music" (Manzelli,
Thakkar, Siahkamari & Kulis, ISMIR 2018, arXiv:1806.09905), which learns melodic structure
at the note level with an LSTM.

tokens (batch, T) -> embedding (+ a style embedding: the piece's corpus or composer, as an
option) -> `layers` LSTMs of `width` with dropout between them -> logits (batch, T, vocab)
of each next token. `step` runs one token with explicit LSTM states, for sampling
(`sample_tokens`: temperature, top-k and nucleus).
"""
import flax.linen as nn
import jax
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


def filter_logits(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
  """Logits (..., V) for sampling: divided by `temperature`, then every token outside the
  `top_k` most likely (0: no limit) and outside the nucleus (the fewest most likely tokens
  whose probability reaches `top_p`; "The Curious Case of Neural Text Degeneration",
  arXiv:1904.09751) set to -inf."""
  z = logits.astype(jnp.float32) / temperature
  if top_k:
    kth = jax.lax.top_k(z, int(top_k))[0][..., -1:]
    z = jnp.where(z < kth, -jnp.inf, z)
  if top_p < 1.0:
    order = jnp.argsort(-z, axis=-1)
    p_sorted = jax.nn.softmax(jnp.take_along_axis(z, order, axis=-1), axis=-1)
    before = jnp.cumsum(p_sorted, axis=-1) - p_sorted  # probability of the tokens ranked above
    keep_sorted = before < top_p  # the most likely token is always kept
    keep = jnp.zeros_like(keep_sorted).at[
        tuple(jnp.indices(order.shape)[:-1]) + (order,)].set(keep_sorted)
    z = jnp.where(keep, z, -jnp.inf)
  return z


def sample_tokens(model: "LSTMLanguageModel", params, key, batch: int, length: int, style=None,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, never=()):
  """Tokens (batch, length) drawn one at a time after BOS, token t with key fold_in(key, t)
  from `filter_logits`; tokens in `never` (e.g. BOS, PAD) are never drawn, and after EOS a
  sequence continues with PAD. style: (batch,) int32 when the model is conditioned."""
  from mirjax.data import symbolic  # pylint: disable=import-outside-toplevel
  bound = model.bind(params)
  style = jnp.zeros((batch,), jnp.int32) if style is None else jnp.asarray(style, jnp.int32)
  banned = jnp.zeros((model.n_outputs,), bool).at[jnp.asarray(tuple(never), jnp.int32)].set(True) if never else None

  def body(carry, t):
    tok, carries, done = carry
    logits, carries = bound.step({"tokens": tok[:, None], "style": style}, carries)
    if banned is not None:
      logits = jnp.where(banned, -jnp.inf, logits)
    new = jax.random.categorical(jax.random.fold_in(key, t), filter_logits(logits, temperature, top_k, top_p))
    new = jnp.where(done, symbolic.PAD, new).astype(jnp.int32)
    return (new, carries, done | (new == symbolic.EOS)), new

  start = (jnp.full((batch,), symbolic.BOS, jnp.int32), bound.initial_carries(batch), jnp.zeros((batch,), bool))
  _, out = jax.lax.scan(body, start, jnp.arange(length))
  return out.T
