"""Checks several test files share."""
import jax
import numpy as np
import optax

from mirjax import sharding, steps


def assert_sharded_step_matches_single_device(system, tx, batch, n_steps=2, **step_kwargs):
  """`n_steps` train steps of `system` with optimizer `tx` on an 8-device mesh and on one
  device agree: loss to 1e-4 relative, parameters to 2 % of how far they moved (max-pool
  arg-maxes can flip on rounding noise and route a few gradients elsewhere)."""
  make = lambda key: system.make_state(key).replace(opt_state=tx.init(system.make_state(key).params))
  results = []
  for n in (8, 1):
    mesh = sharding.make_mesh(n)
    rep = sharding.replicated(mesh)
    state = jax.jit(make, out_shardings=rep)(jax.random.key(0))
    step = jax.jit(lambda s, b: steps.train_step(s, b, model=system.model, task=system.task, tx=tx,
                                                 **step_kwargs),
                   in_shardings=(rep, sharding.batch_sharding(mesh)), out_shardings=rep)
    for _ in range(n_steps):
      state, metrics = step(state, sharding.to_global(batch, mesh))
    results.append((jax.tree.map(np.asarray, state.params), metrics))
  (p8, m8), (p1, m1) = results
  np.testing.assert_allclose(m8["loss"], m1["loss"], rtol=1e-4)
  p0 = jax.tree.map(np.asarray, make(jax.random.key(0)).params)
  moved = optax.tree.norm(jax.tree.map(np.subtract, p1, p0))
  assert moved > 0
  assert optax.tree.norm(jax.tree.map(np.subtract, p8, p1)) < 0.02 * moved
