"""Optimizers: `build(cfg, branches, total_steps)` -> an optax transformation that takes
per-branch gradients (leading branch axis) and returns parameter updates.

The chain is pre-process (identity) -> combine branches (combine.py) -> the usual
optimizer (clipping, then AdamW with warm-up + cosine decay, or Won et al. (2020)'s Adam then
SGD: adam_sgd.py), via optax's aggregating.process.
"""
import jax
import jax.numpy as jnp
import optax
from optax.experimental import aggregating

from mirjax.optim import adam_sgd, combine
from mirjax.optim.combine import branch_weights  # noqa: F401  (re-export)
from mirjax.errors import ConfigError


def schedule(cfg, total_steps: int) -> optax.Schedule:
  """Linear warm-up over cfg.warmup_steps to cfg.learning_rate, cosine decay to 0 at total_steps."""
  warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      0.0, cfg.learning_rate, warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1))


def freeze(prefixes) -> optax.GradientTransformation:
  """Zero the updates of the parameters under the top-level names `prefixes` (e.g. a
  pre-trained encoder a probe leaves as it is: no step, no weight decay)."""
  def zero(updates, params=None):
    del params
    return {k: jax.tree.map(jnp.zeros_like, v) if k in prefixes else v for k, v in updates.items()}
  return optax.stateless(zero)


def optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
  """The optimizer after clipping: "adamw" (warm-up + cosine decay over `total_steps`) or
  "adam_sgd" (Won et al. 2020, adam_sgd.py: its steps are cfg.sgd_boundaries)."""
  if cfg.name == "adamw":
    return optax.adamw(schedule(cfg, total_steps), b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay)
  if cfg.name == "adam_sgd":
    return adam_sgd.adam_then_sgd(cfg.learning_rate, cfg.sgd_boundaries, cfg.sgd_learning_rates,
                                  b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay,
                                  momentum=cfg.momentum)
  raise ConfigError(f"unknown optim.name {cfg.name!r}; mirjax has 'adamw' and 'adam_sgd'")


def build(cfg, branches, total_steps: int, frozen=()) -> optax.GradientTransformationExtraArgs:
  post = optax.chain(
      optax.clip_by_global_norm(cfg.clip_norm) if cfg.clip_norm else optax.identity(),
      optimizer(cfg, total_steps), *([freeze(frozen)] if frozen else []))
  pre = optax.with_extra_args_support(optax.identity())
  return aggregating.process(pre, combine.build(cfg.combine, branches), post)
