"""Won et al. (2020)'s optimiser: Adam, then Nesterov SGD whose learning rate drops in steps.

Their training script (sota-music-tagging-models, training/solver.py, `opt_schedule`) runs
torch Adam (lr 1e-4, weight_decay 1e-4) for 80 epochs, then a fresh torch SGD (lr 1e-3,
momentum 0.9, Nesterov, weight_decay 1e-4), setting its lr to 1e-4 after 20 more epochs and
to 1e-5 after 20 more. torch's `weight_decay` is an L2 term added to the gradient before
the moments, so both phases here are

  g <- g + wd * p                                            (L2, coupled)
  Adam:  u = -lr * m_hat / (sqrt(v_hat) + eps)               (Kingma & Ba 2015, Alg. 1)
  SGD:   b <- mu * b + g;  u = -lr_k * (g + mu * b)           (torch's Nesterov form)

with SGD's momentum b starting from zero at the switch, as a new torch optimiser does, and
kept across the drops, as torch keeps it when only the lr changes.

One simplification, outside what an optax chain does: at each of the three changes Won et
al. also reload the parameters of their best validation checkpoint; here training goes on
from the current parameters.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mirjax.errors import ConfigError


class SwitchState(NamedTuple):
  count: jax.Array  # updates made so far
  first: Any  # state of the transformation used before the switch
  second: Any  # state of the one used from the switch on


def switch_at(step: int, first: optax.GradientTransformation,
              second: optax.GradientTransformation) -> optax.GradientTransformation:
  """`first` for updates 0 .. step - 1, then `second`; each state moves only while in use."""
  def init(params):
    return SwitchState(jnp.zeros([], jnp.int32), first.init(params), second.init(params))

  def update(updates, state, params=None):
    def run_first(s):
      u, f = first.update(updates, s.first, params)
      return u, s._replace(first=f)

    def run_second(s):
      u, g = second.update(updates, s.second, params)
      return u, s._replace(second=g)

    u, state = jax.lax.cond(state.count < step, run_first, run_second, state)
    return u, state._replace(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init, update)


def adam_then_sgd(learning_rate: float, boundaries, sgd_learning_rates, *, b1: float = 0.9,
                  b2: float = 0.999, weight_decay: float = 0.0,
                  momentum: float = 0.9) -> optax.GradientTransformation:
  """Adam at a constant `learning_rate` until step boundaries[0], then Nesterov SGD at
  sgd_learning_rates[k] from step boundaries[k] on; L2 `weight_decay` in both (module doc).

  Raises ValueError unless the boundaries increase and match the rates one to one.
  """
  boundaries, rates = tuple(int(b) for b in boundaries), tuple(float(r) for r in sgd_learning_rates)
  if not boundaries or len(boundaries) != len(rates) or list(boundaries) != sorted(set(boundaries)):
    raise ConfigError(f"optim.sgd_boundaries {boundaries} must increase and pair with "
                     f"optim.sgd_learning_rates {rates} (one rate from each boundary on); given in "
                     "epochs (optim.sgd_boundary_epochs), system.resolve_epochs sets them")
  # SGD counts its own steps from the switch: its drops are relative to boundaries[0]
  sgd_rate = optax.join_schedules([optax.constant_schedule(r) for r in rates],
                                  [b - boundaries[0] for b in boundaries[1:]])
  adam = optax.chain(optax.scale_by_adam(b1=b1, b2=b2), optax.scale(-learning_rate))
  sgd = optax.chain(optax.trace(decay=momentum, nesterov=True), optax.scale_by_learning_rate(sgd_rate))
  return optax.chain(optax.add_decayed_weights(weight_decay) if weight_decay else optax.identity(),
                     switch_at(boundaries[0], adam, sgd))
