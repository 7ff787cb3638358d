"""The embedding job (`config.job = "embed"`, configs/embed.py): a trained model's features
at one named layer, for every example of some splits, without training.

  python -m mirjax.main --config=configs/embed.py --config.trained=workdirs/x --workdir=workdirs/x_embed

`config.layer` names a module by its path in the model ("backend/dense", "frontend") or a
value a module sows into "intermediates" ("backend/embedding": the short-chunk CNN's hidden
layer after batch norm and ReLU); a wrong name is refused with the list of names. Each clip
is read whole as `eval.n_chunks` evenly spaced crops, like evaluation; the layer's output
of each crop is averaged over time (its axis 1, when it has more than (batch, features))
and flattened, and the crops are averaged: one vector per clip.

Writes, per split S:
  WORKDIR/embeddings_S.npz  arrays `embeddings` (N, D) float32, `labels` (N, n_tags) 0/1 or
                            (N,) class indices (absent for unlabelled data), `index` (N,)
  WORKDIR/embeddings_S.csv  one row per clip: index (its row in the split), split, and
                            `tags` (its tags, ";"-joined) or `label` + `class`
and WORKDIR/embeddings.json (layer, width, step, dataset, trained workdir, tag or class
names). `np.load(...)["embeddings"]` and `pandas.read_csv(...)` read them; row i of both is
the same clip. The data and the checkpoint are chosen as in jobs/evaluate.py.
"""
import csv
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from mirjax import inputs as inputs_lib, metrics, models, sharding, workdir as workdir_lib
from mirjax.errors import ConfigError
from mirjax.jobs import evaluate, train


def layer_outputs(model, variables, inputs) -> dict:
  """{name: array} of every module output ("backend/dense") and sown value
  ("backend/embedding") of `model` applied to its named `inputs` (mirjax/inputs.py; or
  an audio array (batch, time)) in eval mode, whose leading axis is the batch. A module
  called more than once gives its first call."""
  _, state = model.apply(variables, inputs, train=False, capture_intermediates=True,
                         mutable=["intermediates"])
  n = next(iter(inputs.values())).shape[0] if isinstance(inputs, dict) else inputs.shape[0]
  out = {}

  def walk(tree, path):
    for key, value in tree.items():
      if isinstance(value, dict):
        walk(value, path + (key,))
        continue
      name = "/".join(path if key == "__call__" else path + (key,))
      first = value[0] if isinstance(value, tuple) and value else value
      if name and hasattr(first, "shape") and first.ndim >= 2 and first.shape[0] == n:
        out[name] = first

  walk(state.get("intermediates", {}), ())
  return out


def pool(x):
  """(batch, time, ...) -> (batch, D): the mean over time (axis 1), the rest flattened;
  (batch, D) as it is."""
  if x.ndim > 2:
    x = x.mean(axis=1)
  return x.reshape(x.shape[0], -1)


def layer_widths(model, variables, example: dict) -> dict:
  """{name: D} of every layer `layer_outputs` finds for inputs shaped as `example` (one
  example's inputs, models.example_inputs; traced only: nothing is computed)."""
  two = {k: jnp.zeros((2,) + v.shape[1:], v.dtype) for k, v in example.items()}
  shapes = jax.eval_shape(lambda v: {k: pool(x) for k, x in layer_outputs(model, v, two).items()},
                          variables)
  return {k: int(s.shape[1]) for k, s in shapes.items()}


def check_layer(name: str, widths: dict):
  """ConfigError listing the layer names unless `name` is one of them."""
  if name not in widths:
    listed = ", ".join(f"{k} ({d})" for k, d in sorted(widths.items()))
    raise ConfigError(f"config.layer={name!r} is not a layer of this model; it has (pooled width): "
                      f"{listed}")


def embed_step(state, batch, *, model, name):
  """Inputs of (batch, chunks, ...) (e.g. audio (batch, chunks, time)) -> (batch, D): the
  layer pooled over time, chunks averaged."""
  inputs, (b, c) = inputs_lib.fold_chunks(inputs_lib.model_inputs(batch))
  x = pool(layer_outputs(model, {"params": state.params, **state.model_state}, inputs)[name])
  return x.reshape(b, c, -1).mean(axis=1)


def embed_split(state, source, *, step, mesh, cfg, crop, target: str):
  """(embeddings (N, D) float32, labels (N, ...) or None) of every example of `source`, in
  its order; every process takes part, all get the result."""
  emb, labels = train.run_over_split(state, source, step, mesh=mesh, cfg=cfg, crop=crop, target=target)
  return emb.astype(np.float32), labels


def label_field(task, info) -> str:
  """The example field of the ground truth: the task's, or for a label-free task the
  dataset's own ("label" with classes, "tags" with tags, "" for unlabelled audio)."""
  if getattr(task, "target", None):
    return task.target
  return "label" if info.class_names else "tags" if info.tag_names else ""


def write_split(workdir: str, split: str, emb, labels, target: str, info):
  """WORKDIR/embeddings_<split>.npz and .csv (process 0 only)."""
  if jax.process_index() != 0:
    return
  index = np.arange(len(emb))
  arrays = {"embeddings": emb, "index": index}
  if labels is not None:
    arrays["labels"] = labels
  np.savez(os.path.join(workdir, f"embeddings_{split}.npz"), **arrays)
  with open(os.path.join(workdir, f"embeddings_{split}.csv"), "w", newline="") as f:
    w = csv.writer(f)
    head = ["index", "split"]
    if target == "label":
      head += ["label", "class"]
    elif target:
      head += ["tags"]
    w.writerow(head)
    for i in index:
      row = [int(i), split]
      if target == "label":
        k = int(labels[i])
        row += [k, info.class_names[k] if k < len(info.class_names) else ""]
      elif target:
        row += [";".join(t for t, on in zip(info.tag_names, labels[i]) if on)]
      w.writerow(row)


def check(config, workdir: str):
  """`evaluate.check`, and a layer name that is given (its existence is checked once the
  model is built)."""
  evaluate.check(config, workdir)
  if not str(config.layer).strip():
    raise ConfigError("config.layer is empty: name a layer, e.g. --config.layer=backend/dense (a "
                      "wrong name lists them all)")


def embed(config, workdir: str) -> dict:
  """Writes the embeddings of `config.splits` of the trained run to WORKDIR; returns what
  WORKDIR/embeddings.json holds."""
  check(config, workdir)  # before anything is read or written
  with workdir_lib.lock(workdir, primary=jax.process_index() == 0):
    mesh = sharding.make_mesh(config.mesh.num_devices)
    opened = evaluate.open_run(config, mesh)
    run, cfg = opened.run, opened.config
    model, crop, name = run.system.model, run.system.crop, str(config.layer).strip()
    variables = {"params": run.state.params, **run.state.model_state}
    widths = layer_widths(model, variables, models.example_inputs(run.config.model, crop))
    check_layer(name, widths)
    state_shardings = jax.tree.map(lambda _: sharding.replicated(mesh), run.system.abstract_state)
    batch_sharding = sharding.batch_sharding(mesh)
    step = jax.jit(functools.partial(embed_step, model=model, name=name),
                   in_shardings=(state_shardings, batch_sharding), out_shardings=batch_sharding)
    target = label_field(run.system.task, opened.info)
    out = {"layer": name, "width": widths[name], "pooling": "mean over time, then over chunks",
           "n_chunks": int(cfg.eval.n_chunks), "crop_samples": int(crop), "step": int(run.step),
           "checkpoint": str(evaluate.step_of(config)), "dataset": opened.info.name,
           "trained": os.path.abspath(config.trained), "label_field": target,
           "tag_names": list(opened.info.tag_names), "class_names": list(opened.info.class_names),
           "splits": {}}
    for split, source in opened.sources.items():
      emb, labels = embed_split(run.state, source, step=step, mesh=mesh, cfg=cfg, crop=crop,
                                target=target)
      write_split(workdir, split, emb, labels, target, opened.info)
      out["splits"][split] = {"examples": int(len(emb)), "npz": f"embeddings_{split}.npz",
                              "csv": f"embeddings_{split}.csv"}
    metrics.write_json(os.path.join(workdir, "embeddings.json"), out)
    if jax.process_index() == 0:
      print(f"{out['trained']} at step {out['step']}: layer {name} ({widths[name]} values per clip) "
            f"on {out['dataset']}: " + ", ".join(
                f"{s} {v['examples']} clips -> {os.path.join(workdir, v['npz'])}, {v['csv']}"
                for s, v in out["splits"].items()))
    return out
