"""Mixed precision (config.dtype / param_dtype, mirjax/precision.py): where the arithmetic
runs, what stays float32, and that bfloat16 training follows float32's."""
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax import config as config_lib, steps
from mirjax.data.info import Info
from mirjax.errors import ConfigError
from mirjax.system import build_system

INFO = Info(name="synthetic", sample_rate=16000, tag_names=("a", "b", "c"))


def _eqns(jaxpr):
  """Every equation of a jaxpr and of the jaxprs nested in it (scans, custom VJPs, ...)."""
  for e in jaxpr.eqns:
    yield e
    for p in e.params.values():
      for sub in p if isinstance(p, (list, tuple)) else (p,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _eqns(inner)


def _step_ops(dtype: str, param_dtype: str = "float32", run: bool = True):
  c = config_lib.from_file("sincmodnet", "smoke")
  c.dtype, c.param_dtype = dtype, param_dtype
  system = build_system(c, INFO)
  state = system.make_state(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  batch = {"audio": 0.1 * rng.standard_normal((4, system.crop)).astype(np.float32),
           "tags": (rng.random((4, 3)) < 0.5).astype(np.float32)}
  step = functools.partial(steps.train_step, model=system.model, task=system.task, tx=system.tx,
                           dtype=system.dtype)
  ops = {}
  for e in _eqns(jax.make_jaxpr(step)(state, batch).jaxpr):
    ops.setdefault(e.primitive.name, []).append(tuple((str(v.aval.dtype), v.aval.ndim) for v in e.invars if hasattr(v, "aval")))
  if not run:
    return ops, state, None, None
  new_state, metrics = jax.jit(step)(state, batch)
  return ops, state, new_state, metrics


def test_bfloat16_runs_the_network_in_bfloat16_and_keeps_the_rest_float32():
  ops, state, new, metrics = _step_ops("bfloat16")
  conv2d = [d for d in ops["conv_general_dilated"] if d[0][1] == 4]  # the back-end's 3x3 convolutions
  assert len(conv2d) >= 3 * 5 and all(d == (("bfloat16", 4), ("bfloat16", 4)) for d in conv2d), conv2d  # forward and both backward
  assert sum(d[0][0] == d[1][0] == "bfloat16" for d in ops["dot_general"]) >= 6  # dense layers, forward and backward
  assert all(d[0][0] in ("float32", "complex64") for d in ops["fft"])  # the front-end's DSP
  for tree in (state.params, new.params, new.opt_state, new.model_state):
    assert {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)} == {"float32"}
  assert metrics["loss"].dtype == jnp.float32 and np.isfinite(float(metrics["loss"]))
  f32_ops, *_ = _step_ops("float32", run=False)  # the default: not one bfloat16 operation
  assert not any(t == "bfloat16" for v in f32_ops.values() for d in v for t, _ in d)


def test_bfloat16_parameters_keep_the_optimizer_state_in_bfloat16():
  _, state, new, _ = _step_ops("bfloat16", "bfloat16")
  for tree in (state.params, new.params):
    assert {str(x.dtype) for x in jax.tree.leaves(tree)} == {"bfloat16"}
  assert "bfloat16" in {str(x.dtype) for x in jax.tree.leaves(new.opt_state)}


def test_an_unknown_dtype_says_the_choices():
  c = config_lib.from_file("sincmodnet", "smoke")
  c.dtype = "float16"
  with pytest.raises(ConfigError, match="config.dtype='float16': choose one of float32, bfloat16"):
    build_system(c, INFO)


@pytest.mark.parametrize("config, words", [("sincmodnet", "smoke"), ("generate", "lstm,smoke")])
def test_bfloat16_training_follows_float32(tmp_path, data_dir, config, words):
  """The smoke config trained on one fixed batch (train_subset = the batch) for 30 steps in
  float32 and in mixed bfloat16, from the same start, through the train job: bfloat16 makes
  at least 3/4 of float32's drop in training loss and ends within 5 % of its loss. (Measured:
  within 3 % for SincModNet, 0.01 % for the LSTM and for configs/generate.py:wavenet,smoke, 0.07 %
  for configs/ssl.py:smoke; the last two are left out here for time.)"""
  from mirjax.jobs import train
  curves = {}
  for dtype in ("float32", "bfloat16"):
    c = config_lib.from_file(config, words)
    c.data.data_dir, c.dtype = data_dir, dtype
    c.data.train_subset = c.train.batch_size
    c.train.num_steps, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 30, 5, 30, 30
    train.train_and_evaluate(c, str(tmp_path / dtype))
    with open(tmp_path / dtype / "metrics.jsonl") as f:
      curves[dtype] = [r["loss"] for r in map(json.loads, f) if r["split"] == "train" and "loss" in r]
  full, half = np.asarray(curves["float32"]), np.asarray(curves["bfloat16"])
  assert len(full) == len(half) == 6 and full[-1] < full[0]
  assert half[0] - half[-1] >= 0.75 * (full[0] - full[-1]), curves
  assert abs(half[-1] - full[-1]) <= 0.05 * abs(full[-1]), curves
