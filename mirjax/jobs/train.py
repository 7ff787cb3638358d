"""The SGD training job: `train_and_evaluate(config, workdir)`.

mesh -> data -> model -> task -> optimizer -> state (restored or fresh) -> jitted,
sharded steps -> loop with metrics, progress, validation and checkpoints -> test.
"""
import functools
import os
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from mirjax import checkpoint, metrics, optim, sharding, steps
from mirjax.data import pipeline
from mirjax.system import build_system, check_sample_rate, checkpoint_meta


def evaluate(state, source, *, eval_step, task, mesh, cfg, crop) -> dict:
  """Task metrics of `state` on one split; every process takes part, all get the result."""
  gathered = []
  for local in pipeline.eval_batches(source, global_batch=cfg.eval.batch_size, crop=crop,
                                     n_chunks=cfg.eval.n_chunks, target=task.target,
                                     read_threads=cfg.data.read_threads):
    batch = sharding.to_global(local, mesh)
    scores = eval_step(state, {"audio": batch["audio"]})
    gathered.append(multihost_utils.process_allgather(
        {"scores": scores, "labels": batch[task.target], "mask": batch["mask"]}, tiled=True))
  mask = np.concatenate([g["mask"] for g in gathered])
  labels = np.concatenate([g["labels"] for g in gathered])[mask]
  scores = {b: np.concatenate([g["scores"][b] for g in gathered])[mask] for b in task.branches}
  return task.evaluate(labels, scores)


def measure_losses(state, source, *, loss_step, task, mesh, cfg, crop) -> np.ndarray:
  """Per-branch mean losses (K,) of `state` on `source` (one centred crop per example)."""
  total, count = 0.0, 0.0
  for local in pipeline.eval_batches(source, global_batch=cfg.eval.batch_size, crop=crop,
                                     n_chunks=1, target=task.target,
                                     read_threads=cfg.data.read_threads):
    local["audio"] = local["audio"][:, 0]
    losses, n = loss_step(state, sharding.to_global(local, mesh))
    total, count = total + np.asarray(losses) * float(n), count + float(n)
  return total / max(count, 1.0)


def train_and_evaluate(config, workdir: str) -> dict:
  t_start = time.time()
  mesh = sharding.make_mesh(config.mesh.num_devices)
  if config.data.name != "embedded":  # its rate is fixed; the others are resampled to this one
    check_sample_rate(config, config.data.sample_rate, config.data.name)  # before any build
  sources, info = pipeline.load(config.data)
  if "train" not in sources:
    raise ValueError(f"the dataset {info.name} has no training examples")
  blend = config.optim.combine.name == "gradient_blending"
  if blend:  # blending measures held-out losses on a part carved from the training split
    sources["train"], sources["blend_heldout"] = pipeline.carve_holdout(
        sources["train"], config.optim.combine.holdout_fraction, config.seed)
    sources["blend_train"] = pipeline.Subset(sources["train"], np.random.default_rng(
        [config.seed, 8]).permutation(len(sources["train"]))[:len(sources["blend_heldout"])])
  system = build_system(config, info)
  model, task, tx, crop = system.model, system.task, system.tx, system.crop
  local_batch = sharding.local_batch_size(config.train.batch_size, mesh)
  sharding.local_batch_size(config.eval.batch_size, mesh)

  rng = jax.random.PRNGKey(config.seed)
  state_shardings = jax.tree.map(lambda _: sharding.replicated(mesh), system.abstract_state)
  batch_sharding = sharding.batch_sharding(mesh)

  config_dict, meta = config.to_dict(), checkpoint_meta(info, task)
  train_iter = pipeline.train_iterator(sources["train"], local_batch=local_batch, crop=crop,
                                       seed=config.seed, target=task.target,
                                       read_threads=config.data.read_threads)
  ckpt = checkpoint.Checkpointer(workdir, max_to_keep=config.train.keep_checkpoints)
  latest = ckpt.latest_step()
  if latest is not None:
    state, data_state = ckpt.restore(
        latest, checkpoint.abstract_with_shardings(system.abstract_state, state_shardings),
        config_dict)
    train_iter.set_state(data_state["train"])
  else:
    state = jax.jit(system.make_state, out_shardings=state_shardings)(rng)

  contract = optim.combine.contracts(config.optim.combine)
  train_step = jax.jit(functools.partial(steps.train_step, model=model, task=task, tx=tx,
                                         contract=contract,
                                         branch_leaves=optim.combine.branch_leaves(config.optim.combine)),
                       in_shardings=(state_shardings, batch_sharding),
                       out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=0)
  eval_step = jax.jit(functools.partial(steps.eval_step, model=model, task=task),
                      in_shardings=(state_shardings, batch_sharding), out_shardings=batch_sharding)
  run_eval = functools.partial(evaluate, eval_step=eval_step, task=task, mesh=mesh, cfg=config, crop=crop)
  held_out = [s for s in ("valid", "test") if s in sources]
  if getattr(task, "label_free", False):  # self-supervised: held-out splits score by their losses
    loss_step = jax.jit(functools.partial(steps.eval_losses, model=model, task=task),
                        in_shardings=(state_shardings, batch_sharding))
    run_eval = lambda state, source: task.summarize(measure_losses(
        state, source, loss_step=loss_step, task=task, mesh=mesh, cfg=config, crop=crop))
  if blend:
    loss_step = jax.jit(functools.partial(steps.eval_losses, model=model, task=task),
                        in_shardings=(state_shardings, batch_sharding))
    measure = functools.partial(measure_losses, loss_step=loss_step, task=task, mesh=mesh,
                                cfg=config, crop=crop)
    c = config.optim.combine
    reestimate = jax.jit(functools.partial(optim.combine.reestimate, smoothing=c.smoothing,
                                           normalize=c.normalize, eps=c.eps),
                         out_shardings=state_shardings.opt_state)

    def blend_hook(state, step):
      """Measure train / held-out losses, move the branch weights, log them."""
      train_l, held_l = measure(state, sources["blend_train"]), measure(state, sources["blend_heldout"])
      state = state.replace(opt_state=reestimate(state.opt_state, train_l, held_l))
      weights = np.asarray(optim.branch_weights(state.opt_state))
      writer.write(step, "blend", {**{f"weight/{b}": w for b, w in zip(task.branches, weights)},
                                   **{f"train_loss/{b}": x for b, x in zip(task.branches, train_l)},
                                   **{f"heldout_loss/{b}": x for b, x in zip(task.branches, held_l)}})
      return state

  writer = metrics.MetricWriter(workdir)
  start = int(state.step)
  total = config.train.num_steps
  progress = metrics.Progress(total, initial=start)
  t_loop, steps_timed, final = None, 0, {}
  for step in range(start + 1, total + 1):
    batch = sharding.to_global(next(train_iter), mesh)
    state, train_metrics = train_step(state, batch)
    if t_loop is None:  # the first step compiles: time the rest
      jax.block_until_ready(state.step)
      t_loop = time.perf_counter()
    else:
      steps_timed += 1
    if step % config.train.log_every == 0 or step == total:
      train_metrics = jax.device_get(train_metrics)
      writer.write(step, "train", train_metrics)
      progress.update(step, train_metrics)
    # Blending measures at every super-epoch's end (the first only records: batch-norm
    # statistics of an untrained model make step-0 losses meaningless).
    if blend and step % config.optim.combine.window == 0 and step < total:
      state = blend_hook(state, step)
    if "valid" in sources and (step % config.train.eval_every == 0 or step == total):
      final["valid"] = run_eval(state, sources["valid"])
      writer.write(step, "valid", final["valid"])
    if step % config.train.checkpoint_every == 0 or step == total:
      ckpt.save(step, state, {"train": train_iter.get_state()}, config_dict, meta)
  progress.close()
  train_seconds = time.perf_counter() - t_loop if t_loop and steps_timed else float("nan")

  for s in held_out:  # valid was evaluated at the last step unless the run had ended already
    final[s] = final[s] if s == "valid" and s in final else run_eval(state, sources[s])
  if "test" in final:
    writer.write(total, "test", final["test"])
  results = {
      f"{s}/{k}": v for s in held_out for k, v in final[s].items()
      if s == "test" or not k.startswith("per_tag")}
  results.update({
      "dataset": info.name, "steps": total, "devices": jax.device_count(),
      "processes": jax.process_count(),
      "train_examples_per_s": steps_timed * config.train.batch_size / train_seconds,
      "wall_time_s": time.time() - t_start, "num_examples": dict(info.num_examples)})
  ckpt.close()
  writer.close()
  if jax.process_index() == 0:
    _plot_filters(model, state, os.path.join(workdir, "filters.png"))
  metrics.write_results(workdir, results)
  return results


def _plot_filters(model, state, path):
  """Frequency responses of the front-end's filters as trained, to WORKDIR/filters.png."""
  from mirjax.frontends.plot import plot_frequency_responses
  variables = {"params": state.params, **state.model_state}
  responses = model.apply(variables, method="frequency_responses")
  plot_frequency_responses(jax.device_get(responses), path, title=f"front-end filters at step {int(state.step)}")
