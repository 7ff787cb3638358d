"""The SGD training job: `train_and_evaluate(config, workdir)`.

mesh -> data -> model -> task -> optimizer -> state (restored or fresh) -> jitted,
sharded steps -> loop with metrics, progress, validation and checkpoints -> test.
"""
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from mirjax import checkpoint, metrics, models, optim, sharding, steps, tasks
from mirjax.data import pipeline
from mirjax.state import TrainState


def init_state(rng, *, model, tx, example_audio):
  """A fresh TrainState: parameters and batch statistics from `model.init`."""
  params_rng, dropout_rng, run_rng = jax.random.split(rng, 3)
  variables = dict(model.init({"params": params_rng, "dropout": dropout_rng}, example_audio, train=False))
  params = variables.pop("params")
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                    opt_state=tx.init(params), rng=run_rng)


def evaluate(state, source, *, eval_step, task, mesh, cfg, crop) -> dict:
  """Task metrics of `state` on one split; every process takes part, all get the result."""
  gathered = []
  for local in pipeline.eval_batches(source, global_batch=cfg.eval.batch_size, crop=crop,
                                     n_chunks=cfg.eval.n_chunks, read_threads=cfg.data.read_threads):
    batch = sharding.to_global(local, mesh)
    scores = eval_step(state, {"audio": batch["audio"]})
    gathered.append(multihost_utils.process_allgather(
        {"scores": scores, "tags": batch["tags"], "mask": batch["mask"]}, tiled=True))
  mask = np.concatenate([g["mask"] for g in gathered])
  labels = np.concatenate([g["tags"] for g in gathered])[mask]
  scores = {b: np.concatenate([g["scores"][b] for g in gathered])[mask] for b in task.branches}
  return task.evaluate(labels, scores)


def train_and_evaluate(config, workdir: str) -> dict:
  t_start = time.time()
  mesh = sharding.make_mesh(config.mesh.num_devices)
  sources, info = pipeline.load(config.data)
  task = tasks.build(config.task, info)
  model = models.build(config.model, n_outputs=len(info.tag_names))
  tx = optim.build(config.optim, task.branches, config.train.num_steps)
  crop = int(round(config.data.crop_seconds * info.sample_rate))
  local_batch = sharding.local_batch_size(config.train.batch_size, mesh)
  sharding.local_batch_size(config.eval.batch_size, mesh)

  make_state = functools.partial(init_state, model=model, tx=tx, example_audio=jnp.zeros((1, crop)))
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(make_state, rng)
  state_shardings = jax.tree.map(lambda _: sharding.replicated(mesh), abstract)
  batch_sharding = sharding.batch_sharding(mesh)

  config_dict = config.to_dict()
  train_iter = pipeline.train_iterator(sources["train"], local_batch=local_batch, crop=crop,
                                       seed=config.seed, read_threads=config.data.read_threads)
  ckpt = checkpoint.Checkpointer(workdir, max_to_keep=config.train.keep_checkpoints)
  latest = ckpt.latest_step()
  if latest is not None:
    state, data_state = ckpt.restore(
        latest, checkpoint.abstract_with_shardings(abstract, state_shardings), config_dict)
    train_iter.set_state(data_state["train"])
  else:
    state = jax.jit(make_state, out_shardings=state_shardings)(rng)

  train_step = jax.jit(functools.partial(steps.train_step, model=model, task=task, tx=tx),
                       in_shardings=(state_shardings, batch_sharding),
                       out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=0)
  eval_step = jax.jit(functools.partial(steps.eval_step, model=model, task=task),
                      in_shardings=(state_shardings, batch_sharding), out_shardings=batch_sharding)
  run_eval = functools.partial(evaluate, eval_step=eval_step, task=task, mesh=mesh, cfg=config, crop=crop)

  writer = metrics.MetricWriter(workdir)
  start = int(state.step)
  total = config.train.num_steps
  progress = metrics.Progress(total, initial=start)
  t_loop, steps_timed = None, 0
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
    if step % config.train.eval_every == 0 or step == total:
      writer.write(step, "valid", run_eval(state, sources["valid"]))
    if step % config.train.checkpoint_every == 0 or step == total:
      ckpt.save(step, state, {"train": train_iter.get_state()}, config_dict)
  progress.close()
  train_seconds = time.perf_counter() - t_loop if t_loop and steps_timed else float("nan")

  valid, test = run_eval(state, sources["valid"]), run_eval(state, sources["test"])
  writer.write(total, "test", test)
  results = {
      **{f"test/{k}": v for k, v in test.items()},
      **{f"valid/{k}": v for k, v in valid.items() if not k.startswith("per_tag")},
      "steps": total, "devices": jax.device_count(), "processes": jax.process_count(),
      "train_examples_per_s": steps_timed * config.train.batch_size / train_seconds,
      "wall_time_s": time.time() - t_start,
      "dataset": f"{config.data.name}/{config.data.config}",
      "num_examples": dict(info.num_examples),
  }
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
