"""The SGD training job: `train_and_evaluate(config, workdir)`.

mesh -> data -> model -> task -> optimizer -> state (restored or fresh) -> jitted,
sharded steps -> loop with metrics, progress, validation and checkpoints -> test, of the
last step or, with `train.select_by`, of the best validation step (kept in WORKDIR/best).
Step counts given in epochs become steps once the training split's size is known.
"""
import functools
import math
import os
import time

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from mirjax import checkpoint, metrics, models, optim, sharding, steps, validate, workdir as workdir_lib
from mirjax import inputs as inputs_lib
from mirjax.data import pipeline
from mirjax.system import build_system, check_sample_rate, resolve_epochs, resolve_inputs
from mirjax.errors import ConfigError


def run_over_split(state, source, step, *, mesh, cfg, crop, target: str):
  """(outputs, labels) of `step(state, inputs)` (each input (batch, chunks, ...), e.g.
  {"audio": (batch, chunks, crop)}: mirjax/inputs.py) over every example of
  `source` in its order (`cfg.eval` batches of `n_chunks` crops), gathered from every process
  with the padding of the last batch dropped; labels are the `target` field (None for "")."""
  gathered = []
  for local in pipeline.eval_batches(source, global_batch=cfg.eval.batch_size, crop=crop,
                                     n_chunks=cfg.eval.n_chunks, target=target,
                                     read_threads=cfg.data.read_threads):
    batch = sharding.to_global(local, mesh)
    part = {"out": step(state, inputs_lib.model_inputs(batch)), "mask": batch["mask"]}
    if target:
      part["labels"] = batch[target]
    gathered.append(multihost_utils.process_allgather(part, tiled=True))
  mask = np.concatenate([g["mask"] for g in gathered])
  joined = jax.tree.map(lambda *xs: np.concatenate(xs)[mask], *[g["out"] for g in gathered])
  labels = np.concatenate([g["labels"] for g in gathered])[mask] if target else None
  return joined, labels


def evaluate(state, source, *, eval_step, task, mesh, cfg, crop) -> dict:
  """Task metrics of `state` on one split; every process takes part, all get the result."""
  scores, labels = run_over_split(state, source, eval_step, mesh=mesh, cfg=cfg, crop=crop,
                                  target=task.target)
  return task.evaluate(labels, {b: scores[b] for b in task.branches})


def evaluator(config, system, mesh, score_dir=None, state_shardings=None):
  """run_eval(state, source) -> the metrics a run reports for a split: `evaluate` with the
  task's metrics, or for a label-free task its held-out losses (`measure_losses`). The
  state is replicated over `mesh`; `config.eval` sets the batch and the chunks per clip.
  Shared by training and by the jobs that score a trained run (jobs/evaluate.py), so both
  report the same numbers. A verification task's `score_dir` receives its score files;
  `state_shardings` say where the state lives (default: replicated)."""
  model, task, crop = system.model, system.task, system.crop
  if state_shardings is None:
    state_shardings = sharding.state_shardings(system.abstract_state, mesh)
  batch_sharding = sharding.batch_sharding(mesh)
  if getattr(task, "label_free", False):  # self-supervised: held-out splits score by their losses
    loss_step = jax.jit(functools.partial(steps.eval_losses, model=model, task=task, dtype=system.dtype),
                        in_shardings=(state_shardings, batch_sharding))
    return lambda state, source: task.summarize(measure_losses(
        state, source, loss_step=loss_step, task=task, mesh=mesh, cfg=config, crop=crop))
  eval_step = jax.jit(functools.partial(steps.eval_step, model=model, task=task, dtype=system.dtype),
                      in_shardings=(state_shardings, batch_sharding), out_shardings=batch_sharding)
  if getattr(task, "verifies", False):  # embeddings of trial utterances, scored trial by trial
    return functools.partial(verify, eval_step=eval_step, task=task, mesh=mesh, cfg=config, crop=crop,
                             score_dir=score_dir)
  return functools.partial(evaluate, eval_step=eval_step, task=task, mesh=mesh, cfg=config, crop=crop)


def verify(state, source, *, eval_step, task, mesh, cfg, crop, score_dir=None) -> dict:
  """Verification metrics of `state` on a trial source (mirjax/data/speakers.py: `keys`,
  `trials`, `cohort`): every utterance and cohort utterance embedded (chunks averaged),
  trials scored per condition (`task.score`), EER and minDCF per condition. With
  `score_dir`, process 0 writes each condition's scores there as a Kaldi/wespeaker score
  file, `<condition>.<trial list stem>.score` (`enrol test score target|nontarget`)."""
  if not hasattr(source, "trials"):
    raise ConfigError("a speaker-verification run scores the trials of its 'test' split only; "
                      "the other splits hold no trial list (--config.splits=test)")
  embed = functools.partial(run_over_split, step=eval_step, mesh=mesh, cfg=cfg, crop=crop, target="")
  embeddings, _ = embed(state, source)
  cohort, _ = embed(state, source.cohort)
  scores = task.score(embeddings, source.keys, source.trials, cohort, source.cohort.labels)
  if score_dir and jax.process_index() == 0:
    from mirjax.evaluation import verification  # pylint: disable=import-outside-toplevel
    os.makedirs(score_dir, exist_ok=True)
    stem = os.path.splitext(getattr(source, "trial_list", "trials"))[0]
    for cond, s in scores.items():
      verification.write_scores(os.path.join(score_dir, f"{cond}.{stem}.score"), source.trials.enrol,
                                source.trials.test, s, source.trials.label)
  return task.evaluate_scores(scores, source.trials.label)


def measure_losses(state, source, *, loss_step, task, mesh, cfg, crop) -> np.ndarray:
  """Per-branch mean losses (K,) of `state` on `source` (one centred crop per example)."""
  total, count = 0.0, 0.0
  for local in pipeline.eval_batches(source, global_batch=cfg.eval.batch_size, crop=crop,
                                     n_chunks=1, target=task.target,
                                     read_threads=cfg.data.read_threads):
    losses, n = loss_step(state, sharding.to_global(inputs_lib.first_chunk(local), mesh))
    total, count = total + np.asarray(losses) * float(n), count + float(n)
  return total / max(count, 1.0)


def training_sources(config, sources: dict) -> dict:
  """The splits a run uses: `data.holdout_fraction` of the training split held out
  ("holdout") and, with `data.train_subset`, that many of the rest kept for training; both
  depend on the seed only, so every variant of a comparison trains on the same examples.
  Gradient blending also gets "blend_heldout" (the held-out part) and "blend_train" (as
  many training examples, where its training losses are measured)."""
  sources = dict(sources)
  d = config.data
  if d.holdout_fraction > 0:
    sources["train"], sources["holdout"] = pipeline.carve_holdout(sources["train"], d.holdout_fraction,
                                                                  config.seed)
  if d.train_subset > 0:
    if d.train_subset > len(sources["train"]):
      raise ConfigError(f"data.train_subset={d.train_subset} exceeds the {len(sources['train'])} "
                       "training examples left")
    keep = np.random.default_rng([config.seed, 9]).permutation(len(sources["train"]))[:d.train_subset]
    sources["train"] = pipeline.Subset(sources["train"], np.sort(keep))
  if config.optim.combine.name == "gradient_blending":
    if "holdout" not in sources:
      raise ConfigError("gradient blending measures held-out losses on part of the training split: "
                       "set --config.data.holdout_fraction (e.g. 0.1), the same for every variant compared")
    sources["blend_heldout"] = sources["holdout"]
    n = min(len(sources["holdout"]), len(sources["train"]))
    sources["blend_train"] = pipeline.Subset(sources["train"], np.random.default_rng(
        [config.seed, 8]).permutation(len(sources["train"]))[:n])
  return sources


def blend_start(config) -> int:
  """First step at which gradient blending measures losses (`optim.combine.start_step`, or
  with -1 the steps for the model's batch-norm running averages to settle)."""
  c = config.optim.combine
  if c.start_step >= 0:
    return int(c.start_step)
  backend = config.model.get("backend", None)
  momentum = backend.get("bn_momentum", 0.0) if backend is not None else 0.0
  return optim.combine.settle_steps(momentum)


def lower_is_better(metric: str) -> bool:
  """Whether validation metric `metric` is minimised: a loss ("loss", "loss/<worker>": what
  label-free runs report), an EER, a minDCF, a mean squared error, a perplexity or bits per
  token or sample; every other one (ROC-AUC, accuracy) is maximised."""
  parts = metric.split("/")
  return any(p.endswith("loss") for p in parts) or parts[-1] in ("eer", "min_dcf", "mse", "perplexity",
                                                                  "bits_per_token", "bits_per_sample")


def improves(metric: str, value: float, best) -> bool:
  """Whether `value` of `metric` beats the `best` record (None: none yet). A non-finite
  value never does (a diverged run is not selected); ties keep the earlier step."""
  if not math.isfinite(value):
    return False
  if best is None or best["value"] is None or not math.isfinite(best["value"]):
    return True
  return value < best["value"] if lower_is_better(metric) else value > best["value"]


def best_record(step: int, valid: dict, select_by: str) -> dict:
  """What WORKDIR/best keeps of a validation run: the step, the metric, its value and the
  scalar validation metrics. Raises ValueError when `valid` lacks the metric."""
  if select_by not in valid or not np.isscalar(valid[select_by]):
    raise ConfigError(f"train.select_by={select_by!r} is not a validation metric of this task; it has "
                     f"{sorted(k for k, v in valid.items() if np.isscalar(v))}, or '' for the last step")
  scalars = {k: (v.item() if hasattr(v, "item") else v) for k, v in valid.items() if np.isscalar(v)}
  return {"step": int(step), "select_by": select_by, "value": float(valid[select_by]), "valid": scalars}


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (or resumes) `config` in `workdir`, which it holds locked (one run per
  workdir), and returns the results it writes to WORKDIR/results.json.

  A resumed run keeps its length: a checkpoint of another `train.num_steps` is refused
  (IncompatibleCheckpointError) rather than moving the end of its learning-rate schedule.
  Re-running a finished workdir re-evaluates it, keeping the training figures.
  """
  with workdir_lib.lock(workdir, primary=jax.process_index() == 0):
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config, workdir: str) -> dict:
  t_start = time.time()
  asked = checkpoint.config_hash(config.to_dict())  # the config as given (before epochs resolve)
  mesh = sharding.make_mesh(config.mesh.num_devices)
  validate.check(config, mesh)  # before any data is loaded
  if config.data.name != "embedded":  # its rate is fixed; the others are resampled to this one
    check_sample_rate(config, config.data.sample_rate, config.data.name)  # before any build
  sources, info = pipeline.load(config.data)
  if "train" not in sources:
    raise ConfigError(f"the dataset {info.name} has no training examples")
  if not any(s in sources for s in ("valid", "test")):
    logging.warning("the dataset %s has no validation or test examples (every file of those "
                    "splits was unreadable or too short, or none was assigned to them): this run "
                    "trains but reports no held-out metric. Give files the split 'valid' or "
                    "'test' (tags.csv's split column) to measure the model.", info.name)
  blend = config.optim.combine.name == "gradient_blending"
  sources = training_sources(config, sources)
  n_train = len(sources["train"])
  config = resolve_epochs(config, n_train)  # epochs -> steps, before the schedule is built
  config = resolve_inputs(config, info)  # a feature model's input width, from its dataset
  graft = None
  if config.model.name == "probe" and config.model.pretrained:  # the encoder, config and weights
    config, graft = checkpoint.pretrained_encoder(config, workdir)
  system = build_system(config, info, graft)
  model, task, tx, crop = system.model, system.task, system.tx, system.crop
  select_by = config.train.select_by
  if select_by and "valid" not in sources:
    raise ConfigError(f"train.select_by={select_by!r} selects on the validation split, which "
                     f"{info.name} lacks: set --config.train.select_by='' (test the last step)")
  if select_by and getattr(task, "label_free", False) and not lower_is_better(select_by):
    raise ConfigError(f"train.select_by={select_by!r}: a label-free task reports held-out losses "
                     "('loss', 'loss/<worker>'), minimised; select by one, or '' for the last step")
  local_batch = sharding.local_batch_size(config.train.batch_size, mesh)

  rng = jax.random.PRNGKey(config.seed)
  state_shardings = sharding.state_shardings(system.abstract_state, mesh, config.mesh)
  batch_sharding = sharding.batch_sharding(mesh)

  config_dict, meta = config.to_dict(), info.to_meta(task)
  train_iter = pipeline.train_iterator(sources["train"], local_batch=local_batch, crop=crop,
                                       seed=config.seed, target=task.target,
                                       read_threads=config.data.read_threads,
                                       worker_processes=config.data.get("worker_processes", 0),
                                       extra=getattr(task, "extra_targets", ()))
  ckpt = checkpoint.Checkpointer(workdir, max_to_keep=config.train.keep_checkpoints)
  abstract_placed = checkpoint.abstract_with_shardings(system.abstract_state, state_shardings)
  # The newest checkpoint that reads (an unreadable one is set aside, saying why);
  # training time and steps timed are summed over the segments of a resumed run.
  timing = {"train_seconds": 0.0, "timed_steps": 0, "wall_seconds": 0.0, "segments": 0}
  restored = ckpt.newest_readable(lambda step: ckpt.restore(step, abstract_placed, config_dict, meta),
                                  set_aside=jax.process_index() == 0)
  if restored is not None:
    latest, (state, data_state) = restored
    train_iter.set_state(data_state["train"])
    timing.update(data_state.get("timing", {}))
  else:
    latest = None
    state = jax.jit(system.make_state, out_shardings=state_shardings)(rng)
  # The selected step lives in its own folder, out of reach of max_to_keep; its record
  # (step, value) survives a kill. A record past `latest` is from steps a killed run had
  # already evaluated: the resumed run replays them and leaves the record as it is.
  best_ckpt = checkpoint.Checkpointer(workdir, max_to_keep=1, folder="best") if select_by else None
  best = None
  if best_ckpt is not None and best_ckpt.latest_step() is not None:
    _, best = best_ckpt.restore(best_ckpt.latest_step(), abstract_placed, config_dict)

  contract = optim.combine.contracts(config.optim.combine)
  train_step = jax.jit(functools.partial(steps.train_step, model=model, task=task, tx=tx,
                                         contract=contract, dtype=system.dtype,
                                         branch_leaves=optim.combine.branch_leaves(config.optim.combine)),
                       in_shardings=(state_shardings, batch_sharding),
                       out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=0)
  run_eval = evaluator(config, system, mesh, score_dir=os.path.join(workdir, "scores"),
                       state_shardings=state_shardings)
  held_out = [s for s in ("valid", "test") if s in sources]
  if blend:
    loss_step = jax.jit(functools.partial(steps.eval_losses, model=model, task=task, dtype=system.dtype),
                        in_shardings=(state_shardings, batch_sharding))
    measure = functools.partial(measure_losses, loss_step=loss_step, task=task, mesh=mesh,
                                cfg=config, crop=crop)
    c = config.optim.combine
    first_blend = blend_start(config)
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

  start = int(state.step)
  writer = metrics.MetricWriter(workdir, resume_step=start if latest is not None else None)
  total = config.train.num_steps
  progress = metrics.Progress(total, initial=start)
  t_loop, steps_timed, final = None, 0, {}

  def timing_now():
    """The training figures up to now, this segment's included (saved with a checkpoint):
    seconds of timed steps, their count, wall time (set-up included), segments."""
    ran = t_loop is not None  # this invocation trained at least one step
    return {"train_seconds": timing["train_seconds"] + (time.perf_counter() - t_loop if ran else 0.0),
            "timed_steps": timing["timed_steps"] + steps_timed,
            "wall_seconds": timing["wall_seconds"] + (time.time() - t_start if ran else 0.0),
            "segments": timing["segments"] + int(ran)}

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
    # Blending measures at every super-epoch's end once batch-norm running averages have
    # settled (`blend_start`); the first measurement only records.
    if blend and step % config.optim.combine.window == 0 and first_blend <= step < total:
      state = blend_hook(state, step)
    if "valid" in sources and (step % config.train.eval_every == 0 or step == total):
      final["valid"] = run_eval(state, sources["valid"])
      writer.write(step, "valid", final["valid"])
      if select_by and (best is None or step > best["step"]):
        record = best_record(step, final["valid"], select_by)
        if improves(select_by, record["value"], best):
          best = record
          best_ckpt.save(step, state, best, config_dict, meta)
          best_ckpt.wait_until_finished()  # on disk before any later checkpoint can be
    if step % config.train.checkpoint_every == 0 or step == total:
      saved_timing = timing_now()  # the last one (step == total) is what results report
      ckpt.save(step, state, {"train": train_iter.get_state(), "timing": saved_timing},
                config_dict, meta)
  progress.close()
  if hasattr(train_iter, "close"):  # stops grain's worker processes, if any
    train_iter.close()
  if start < total:
    timing = saved_timing
  t_eval = time.time()

  selected = state
  if best is not None:  # test (and report validation of) the selected step
    selected = best_ckpt.restore_state(best["step"], abstract_placed)
    final["valid"] = dict(best["valid"])
  for s in held_out:  # valid was evaluated at the last step unless the run had ended already
    final[s] = final[s] if s == "valid" and s in final else run_eval(selected, sources[s])
  if "test" in final:
    writer.write(total, "test", final["test"])
  results = {
      f"{s}/{k}": v for s in held_out for k, v in final[s].items()
      if s == "test" or not k.startswith("per_tag")}
  results.update({
      "dataset": info.name, "steps": int(state.step), "config_hash": asked, "devices": jax.device_count(),
      "processes": jax.process_count(),
      # over every segment of a resumed run; the first step of each (compilation) untimed
      "train_examples_per_s": (timing["timed_steps"] * config.train.batch_size / timing["train_seconds"]
                               if timing["timed_steps"] else float("nan")),
      "train_seconds": timing["train_seconds"], "train_segments": timing["segments"],
      "train_wall_time_s": timing["wall_seconds"],  # set-up + training, summed over segments
      "eval_wall_time_s": time.time() - t_eval,  # the held-out evaluation of this invocation
      "wall_time_s": timing["wall_seconds"] + time.time() - t_eval,
      "num_examples": dict(info.num_examples),
      "backend": models.describe_backend(config.model), "train_examples": n_train,
      "epochs": total * config.train.batch_size / max(n_train, 1),
      "selected_by": select_by if best is not None else "last step",
      "selected_step": best["step"] if best is not None else total,
      "selection": (f"best valid {select_by} ({best['value']:.4f}) at step {best['step']} of {total}"
                    if best is not None else f"last step ({total})")})
  if best is not None:
    results["selected_value"] = best["value"]
  ckpt.close()
  if best_ckpt is not None:
    best_ckpt.close()
  writer.close()
  if jax.process_index() == 0:
    _plot_filters(model, selected, os.path.join(workdir, "filters.png"))
  metrics.write_results(workdir, results)
  return results


def _plot_filters(model, state, path):
  """Frequency responses of the front-end's filters as trained, to WORKDIR/filters.png;
  learned raw-audio filters also sorted by peak frequency, to WORKDIR/filters_sorted.png."""
  from mirjax.frontends.plot import plot_frequency_responses, plot_sorted_filters
  from mirjax.frontends.raw import StridedConv
  if not hasattr(type(model), "frequency_responses"):  # e.g. the speaker models: no single front-end
    return
  variables = {"params": state.params, **state.model_state}
  responses = model.apply(variables, method="frequency_responses")
  plot_frequency_responses(jax.device_get(responses), path, title=f"front-end filters at step {int(state.step)}")
  if isinstance(getattr(model, "frontend", None), StridedConv):  # unordered filters: sort them
    plot_sorted_filters(jax.device_get(responses), os.path.join(os.path.dirname(path), "filters_sorted.png"),
                        title=f"learned filters by peak frequency, step {int(state.step)}")
