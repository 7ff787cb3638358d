"""Pure train and eval steps (DESIGN.md section 1). No I/O, no globals: jit them in jobs/."""
import jax
import jax.numpy as jnp
import optax

from mirjax import precision
from mirjax.inputs import fold_chunks, model_inputs
from mirjax.optim import branch_weights
from mirjax.state import TrainState


def _apply(model, params, model_state, inputs, dtype=None, **kw):
  """model.apply on the dict of named `inputs` (mirjax/inputs.py) that always returns
  (outputs, new_model_state); with `dtype`, computing in it (mirjax/precision.py: float32
  outputs and statistics)."""
  variables = {"params": params, **model_state}
  run = model.apply if dtype is None else (lambda v, x, **k: precision.apply(model, v, x, dtype, **k))
  if not model_state or not kw.get("train"):
    return run(variables, inputs, **kw), model_state
  return run(variables, inputs, mutable=list(model_state), **kw)


def train_step(state: TrainState, batch, *, model, task, tx, contract=False, branch_leaves=None, dtype=None):
  """One optimizer step on per-branch gradients.

  losses, vjp = vjp(params -> [loss_k]); branch_grads = vmap(vjp)(I) gives every
  leaf a leading branch axis; the optax chain combines branches, then updates.
  With `contract` (for combiners whose step uses the weights already in their state, see
  `optim.combine.contracts`) the branch axis is contracted with the current weights inside
  the backward pass, vjp(w) = sum_k w_k g_k: the same update for one backward pass, not K.
  `branch_leaves` (a parameter-path substring, with `contract`) also hands the combiner
  the per-branch gradients of the leaves it names as `layer_grads` (GradNorm's last shared
  layer): of the K backward passes only the part that reaches those leaves survives
  XLA's dead-code elimination. `dtype`: the model computes in it (mixed precision,
  mirjax/precision.py); losses, gradients and updates stay float32.
  """
  step_rng = jax.random.fold_in(state.rng, state.step)

  def branch_losses(params):
    outputs, new_model_state = _apply(model, params, state.model_state, model_inputs(batch), dtype=dtype,
                                      train=True, rngs={"dropout": step_rng})
    losses = task.losses(outputs, batch, step=state.step)  # e.g. a margin warmed up over steps
    return jnp.stack([losses[b] for b in task.branches]), new_model_state

  losses, vjp, new_model_state = jax.vjp(branch_losses, state.params, has_aux=True)
  contracted = contract and losses.shape[0] > 1
  extra = {}
  if contracted:
    (grads,) = vjp(branch_weights(state.opt_state).astype(losses.dtype))
    branch_grads = jax.tree.map(lambda g: g[None], grads)
    if branch_leaves:
      (every,) = jax.vmap(vjp)(jnp.eye(losses.shape[0], dtype=losses.dtype))
      extra["layer_grads"] = jax.tree_util.tree_map_with_path(
          lambda path, g: g if branch_leaves in jax.tree_util.keystr(path) else None, every)
  else:
    (branch_grads,) = jax.vmap(vjp)(jnp.eye(losses.shape[0], dtype=losses.dtype))
  updates, opt_state = tx.update(branch_grads, state.opt_state, state.params, branch_losses=losses,
                                 contracted=contracted, **extra)
  params = optax.apply_updates(state.params, updates)

  weights = branch_weights(opt_state)
  metrics = {"loss": jnp.sum(weights * losses), "update_norm": optax.tree.norm(updates)}
  for i, b in enumerate(task.branches):
    metrics[f"loss/{b}"] = losses[i]
    if len(task.branches) > 1:
      metrics[f"weight/{b}"] = weights[i]
  new_state = state.replace(step=state.step + 1, params=params, model_state=new_model_state,
                            opt_state=opt_state)
  return new_state, metrics


def eval_step(state: TrainState, batch, *, model, task, dtype=None):
  """Predictions for inputs of (batch, chunks, ...) (e.g. audio (batch, chunks, time)): each
  chunk scored, chunk scores averaged."""
  inputs, (b, c) = fold_chunks(model_inputs(batch))
  outputs, _ = _apply(model, state.params, state.model_state, inputs, dtype=dtype, train=False)
  scores = task.predict(outputs)
  return {k: v.reshape(b, c, *v.shape[1:]).mean(axis=1) for k, v in scores.items()}


def eval_losses(state: TrainState, batch, *, model, task, dtype=None):
  """Per-branch mean losses (K,) of a batch (inputs (batch, ...), e.g. audio (batch, time))
  in eval mode, padding masked out, and the number of real examples (or what a task with
  `count` averages over, e.g. tokens): what gradient blending measures."""
  outputs, _ = _apply(model, state.params, state.model_state, model_inputs(batch), dtype=dtype, train=False)
  losses = task.losses(outputs, batch)
  count = task.count(batch) if hasattr(task, "count") else jnp.sum(batch["mask"].astype(jnp.float32))
  return jnp.stack([losses[b] for b in task.branches]), count
