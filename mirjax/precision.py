"""Mixed precision: the step computes in `config.dtype` while the parameters, and so the
optimizer state, stay in `config.param_dtype`.

With dtype "bfloat16" and param_dtype "float32" (mixed precision), where the train and eval
steps apply the model (`apply`):
- every parameter but a front-end's is cast to bfloat16, and every dense, convolution and
  transposed-convolution layer casts its input to bfloat16, so the network's matrix
  products and convolutions, and what follows them, run in bfloat16;
- a front-end's parameters (any path with "frontend" in it: sinc cut-offs, modulation
  rates, filterbanks) and the audio stay float32, so its DSP (FFTs, log compression) runs
  in float32 up to its first learned convolution;
- the outputs are cast back to float32 before the loss and the metrics, batch-norm
  statistics keep float32, and the gradients reach the float32 parameters through the
  casts, in float32.
"""
import contextlib

import jax
import jax.numpy as jnp
from flax import linen as nn

from mirjax.errors import ConfigError

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def dtype(name: str, field: str = "dtype"):
  """The jnp dtype a config names, or a ConfigError naming the choices."""
  if name not in DTYPES:
    raise ConfigError(f"config.{field}={name!r}: choose one of {', '.join(DTYPES)}")
  return DTYPES[name]


def dtypes(config):
  """(the dtype a config's steps compute in, the dtype its parameters are kept in), each None
  where it is float32 and nothing need be cast: both None for a plain float32 run."""
  compute, params = dtype(config.get("dtype", "float32")), dtype(config.get("param_dtype", "float32"), "param_dtype")
  if params == jnp.float32:
    return (None if compute == jnp.float32 else compute), None
  return compute, params  # bfloat16 parameters: the step casts them to the compute dtype


def cast_floating(tree, to):
  """Every floating-point leaf of `tree` as `to`; integer and boolean leaves unchanged."""
  return jax.tree.map(lambda x: x.astype(to) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x, tree)


FULL_PRECISION = "frontend"  # parameters under a path naming it stay float32
COMPUTE_LAYERS = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose)


def cast_params(params, to):
  """`params` with every floating leaf but a front-end's (FULL_PRECISION) cast to `to`."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: x if FULL_PRECISION in jax.tree_util.keystr(path) else cast_floating(x, to), params)


@contextlib.contextmanager
def computing_in(to):
  """Within it, every dense / convolution layer a model applies casts its floating inputs
  to `to` (a flax method interceptor: the models themselves name no dtype)."""
  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and isinstance(context.module, COMPUTE_LAYERS):
      args = cast_floating(args, to)
    return next_fun(*args, **kwargs)
  with nn.intercept_methods(interceptor):
    yield


def apply(model, variables, inputs, to, **kw):
  """model.apply computing in `to`: (outputs in float32, or (outputs, updated collections
  in their own dtypes) with `mutable`)."""
  variables = {**variables, "params": cast_params(variables["params"], to)}
  with computing_in(to):
    out = model.apply(variables, inputs, **kw)
  if not kw.get("mutable"):
    return cast_floating(out, jnp.float32)
  out, updated = out
  old = {k: variables[k] for k in updated}
  return cast_floating(out, jnp.float32), jax.tree.map(lambda new, was: new.astype(was.dtype), dict(updated), old)
