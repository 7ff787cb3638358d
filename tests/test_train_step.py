"""The pure train step: per-branch gradients, sharding invariance, checkpoints across meshes."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.experimental import aggregating

from mirjax import checkpoint, config as base_config, models, optim, sharding, steps, tasks
from mirjax.system import init_state


class _Info:
  tag_names = ("a", "b", "c")


def _setup(frontend="sincmodnet"):
  cfg = base_config.from_file({"logmel": "melcnn"}.get(frontend, frontend), "smoke")
  model = models.build(cfg.model, n_outputs=3)
  task = tasks.build(cfg.task, _Info)
  tx = optim.build(cfg.optim, task.branches, total_steps=10)
  return cfg, model, task, tx


def _batch(n=16, t=4000, seed=0):
  rng = np.random.default_rng(seed)
  return {"audio": rng.standard_normal((n, t)).astype(np.float32) * 0.1,
          "tags": (rng.random((n, 3)) < 0.5).astype(np.float32)}


def _run(mesh, model, task, tx, n_steps=2):
  shard_state = sharding.replicated(mesh)
  make = functools.partial(init_state, model=model, tx=tx, example_inputs={"audio": jnp.zeros((1, 4000))})
  state = jax.jit(make, out_shardings=shard_state)(jax.random.PRNGKey(0))
  step = jax.jit(functools.partial(steps.train_step, model=model, task=task, tx=tx),
                 in_shardings=(shard_state, sharding.batch_sharding(mesh)), out_shardings=shard_state)
  for i in range(n_steps):
    state, metrics = step(state, sharding.to_global(_batch(seed=i), mesh))
  return state, metrics


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def _x64_run(mesh, model, task, tx, n_steps=2, fsdp=False):
  """`_run` in float64 (parameters, statistics, batches): in 64-bit mode a max-pool's
  arg-max cannot flip on the rounding noise of a reduction split over devices. With `fsdp`
  the state is sharded over the mesh (every array of at least 64 elements)."""
  up = lambda tree: jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, tree)

  def make(rng):
    s = init_state(rng, model=model, tx=tx, example_inputs={"audio": jnp.zeros((1, 4000))})
    params = up(s.params)
    return s.replace(params=params, model_state=up(s.model_state), opt_state=tx.init(params))

  shard = sharding.state_shardings(jax.eval_shape(make, jax.random.PRNGKey(0)), mesh,
                                   {"fsdp": fsdp, "fsdp_min_size": 64})
  state = jax.jit(make, out_shardings=shard)(jax.random.PRNGKey(0))
  s0 = _host(state.params)
  step = jax.jit(functools.partial(steps.train_step, model=model, task=task, tx=tx),
                 in_shardings=(shard, sharding.batch_sharding(mesh)), out_shardings=(shard, sharding.replicated(mesh)))
  for i in range(n_steps):
    batch = {k: v.astype(np.float64) for k, v in _batch(seed=i).items()}
    state, metrics = step(state, sharding.to_global(batch, mesh))
  return s0, state, metrics


def sharded_vs_single_device(frontend: str, fsdp: bool = False) -> dict:
  """Two float64 steps on an 8-device mesh (with `fsdp`, the state sharded over it) against
  the same on 1 device (run with JAX_ENABLE_X64=1): the loss, and the parameter and
  statistics differences relative to how far the parameters moved."""
  assert jax.device_count() == 8 and jax.config.jax_enable_x64
  _, model, task, _ = _setup(frontend)
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                           optim.combine.static_weights([1.0]), optax.sgd(1e-3))
  s0, s8, m8 = _x64_run(sharding.make_mesh(-1), model, task, tx, fsdp=fsdp)
  split = [x for x in jax.tree.leaves(s8) if hasattr(x, "sharding") and not x.sharding.is_fully_replicated]
  _, s1, m1 = _x64_run(sharding.make_mesh(1), model, task, tx)
  p8, p1 = _host(s8.params), _host(s1.params)
  moved = float(optax.tree.norm(jax.tree.map(np.subtract, p1, s0)))
  stats = [float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))
           for a, b in zip(jax.tree.leaves(_host(s8.model_state)), jax.tree.leaves(_host(s1.model_state)))]
  return {"loss8": float(m8["loss"]), "loss1": float(m1["loss"]), "moved": moved,
          "dtypes": sorted({str(x.dtype) for x in jax.tree.leaves(p8)}),
          "mesh8": int(jax.tree.leaves(s8.params)[0].sharding.mesh.devices.size),
          "split_leaves": len(split), "split_elements": sum(int(x.size) for x in split),
          "largest_shard": max((x.addressable_shards[0].data.size / x.size for x in split), default=1.0),
          "param_diff": float(optax.tree.norm(jax.tree.map(np.subtract, p8, p1))) / moved,
          "stats_diff": max(stats, default=0.0)}


@pytest.mark.parametrize("frontend, fsdp", [("sincmodnet", False), ("logmel", False), ("logmel", True)])
def test_sharded_step_equals_single_device(frontend, fsdp):
  """Two steps on an 8-device mesh equal two steps on 1 device, to float64 rounding.

  In float32 the comparison was not deterministic: rounding noise of the batch-norm and
  gradient reductions, split over devices, flips max-pool arg-maxes at near-ties and routes
  some gradients elsewhere (3.9 % of the parameter change once, against a 2 % bound). In
  64-bit mode (its own process: the setting is global) noise of 1e-16 flips nothing, so the
  bounds are tight. Plain SGD after the branch combiner: Adam's first steps are
  sign(g) * lr, which would turn rounding noise in near-zero gradients into full steps."""
  import json
  import os
  import subprocess
  import sys
  env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  p = subprocess.run([sys.executable, os.path.abspath(__file__), frontend] + ["fsdp"] * fsdp, env=env,
                     capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-4000:]
  r = json.loads(p.stdout.strip().splitlines()[-1])
  assert r["dtypes"] == ["float64"] and r["mesh8"] == 8 and r["moved"] > 0
  if fsdp:  # parameters and optimizer state split 8 ways, not copied
    assert r["split_leaves"] >= 4 and r["largest_shard"] == 1 / 8, r
  else:
    assert r["split_leaves"] == 0
  np.testing.assert_allclose(r["loss8"], r["loss1"], rtol=1e-12)
  assert r["param_diff"] < 1e-9, r
  assert r["stats_diff"] < 1e-9, r


def test_branch_gradients_are_combined_by_the_optimizer():
  """With one branch, vmap-of-vjp + the 'sum' combiner equals jax.grad of the loss."""
  _, model, task, tx = _setup("logmel")
  step = jax.jit(functools.partial(steps.train_step, model=model, task=task, tx=tx))
  make = functools.partial(init_state, model=model, tx=tx, example_inputs={"audio": jnp.zeros((1, 4000))})
  state = jax.jit(make)(jax.random.PRNGKey(1))  # compiled: faster than op by op
  state, _ = step(state, _batch(8, seed=1))  # the warm-up starts at learning rate 0: step past it
  batch = _batch(8)
  rng = jax.random.fold_in(state.rng, state.step)

  def loss(p):
    out, _ = model.apply({"params": p, **state.model_state}, batch["audio"], train=True,
                         rngs={"dropout": rng}, mutable=["batch_stats"])
    return task.losses(out, batch)["tagging"]

  @jax.jit
  def expected_update(state):
    one_branch = jax.tree.map(lambda g: g[None], jax.grad(loss)(state.params))
    return tx.update(one_branch, state.opt_state, state.params, branch_losses=jnp.ones(1))[0]

  expected = expected_update(state)
  new_state, metrics = step(state, batch)
  got = jax.tree.map(lambda a, b: a - b, new_state.params, state.params)
  want = jax.tree.map(lambda a, b: a - b, optax.apply_updates(state.params, expected), state.params)
  assert float(optax.tree.norm(want)) > 0  # the step moved the parameters
  # the step is compared after it is added to the parameters, so two compiled programs may differ
  # by a few float32 ulps of the parameter (~1e-7 here), far below the update itself (~5e-4)
  for a, b, p in zip(jax.tree.leaves(got), jax.tree.leaves(want), jax.tree.leaves(state.params)):
    ulp = float(np.finfo(np.float32).eps * max(jnp.max(jnp.abs(p)), jnp.max(jnp.abs(b))))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=4 * ulp)
  # the reported loss is the loss of the parameters the step started from, on this batch
  want = float(jax.jit(loss)(state.params))
  for key in ("loss", "loss/tagging"):
    np.testing.assert_allclose(float(metrics[key]), want, rtol=1e-5, err_msg=key)


def test_static_weights_scale_branch_gradients():
  import ml_collections
  cfg = ml_collections.ConfigDict({"name": "static", "weights": {"x": 0.25, "y": 2.0}})
  agg = optim.combine.build(cfg, ["x", "y"])
  g = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]])}
  out, state = agg.update(g, agg.init({"w": jnp.zeros(2)}))
  np.testing.assert_allclose(out["w"], 0.25 * np.array([1.0, 2.0]) + 2.0 * np.array([3.0, 4.0]))
  np.testing.assert_allclose(state.weights, [0.25, 2.0])
  with pytest.raises(ValueError, match="lacks branches"):
    optim.combine.build(ml_collections.ConfigDict({"name": "static", "weights": {"x": 1.0}}), ["x", "y"])


def test_checkpoint_saved_on_one_mesh_restores_onto_another(tmp_path):
  cfg, model, task, tx = _setup()
  mesh8, mesh2 = sharding.make_mesh(-1), jax.make_mesh((2,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[6:8])
  state, _ = _run(mesh8, model, task, tx, n_steps=1)
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  ckpt.save(1, state, {"train": {"next_index": 3}}, cfg.to_dict(), {"tag_names": ["a", "b", "c"]})
  ckpt.wait_until_finished()
  abstract = jax.eval_shape(lambda: state)
  target = jax.tree.map(lambda _: sharding.replicated(mesh2), abstract)
  restored, data_state = ckpt.restore(1, checkpoint.abstract_with_shardings(abstract, target), cfg.to_dict())
  ckpt.close()
  assert data_state == {"train": {"next_index": 3}}
  assert ckpt.saved_meta(1) == {"tag_names": ["a", "b", "c"]}
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  leaf = jax.tree.leaves(restored.params)[0]
  assert leaf.sharding.mesh.devices.tolist() == jax.devices()[6:8]


def test_incompatible_checkpoint_is_refused(tmp_path):
  cfg, model, task, tx = _setup()
  state, _ = _run(sharding.make_mesh(-1), model, task, tx, n_steps=1)
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  ckpt.save(1, state, {"train": {}}, cfg.to_dict(), {})
  ckpt.wait_until_finished()
  other = base_config.from_file("sincnet", "smoke").to_dict()
  with pytest.raises(checkpoint.IncompatibleCheckpointError, match="model.frontend.name"):
    ckpt.restore(1, jax.eval_shape(lambda: state), other)
  ckpt.close()


if __name__ == "__main__":  # test_sharded_step_equals_single_device's float64 process
  import json
  import sys
  print(json.dumps(sharded_vs_single_device(sys.argv[1], fsdp="fsdp" in sys.argv[2:])))
