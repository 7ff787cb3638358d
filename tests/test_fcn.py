"""The FCN and SampleCNN back-ends (models/fcn.py): shapes, the layers they expose to the
similarity job, and a train step that changes every parameter."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mirjax import models
from mirjax.jobs import embed


@pytest.mark.parametrize("make,blocks", [(models.fcn_config, 4), (models.samplecnn_config, 9)])
def test_fully_convolutional_backends_run_expose_their_blocks_and_train(make, blocks):
  cfg = make()
  model = models.build(cfg, 5)
  audio = jnp.asarray(np.random.default_rng(0).standard_normal((4, 12000)) * 0.1, jnp.float32)
  variables = jax.jit(model.init)(jax.random.key(0), {"audio": audio})
  logits = jax.jit(model.apply)(variables, {"audio": audio})["tagging"]
  assert logits.shape == (4, 5) and np.isfinite(np.asarray(logits)).all()
  # jitted: run eagerly, op by op, the capture takes longer than compiling it
  layers = jax.jit(lambda v, x: embed.layer_outputs(model, v, x))(variables, {"audio": audio})
  assert [f"backend/block{i}" for i in range(blocks)] == sorted(
      (k for k in layers if k.startswith("backend/block")), key=lambda k: int(k[13:]))
  assert layers["backend/embedding"].shape == (4, cfg.backend.channels[-1])
  labels = jnp.asarray(np.eye(5)[[0, 1, 2, 3]], jnp.float32)

  def loss(params):
    out, _ = model.apply({**variables, "params": params}, {"audio": audio}, train=True,
                         mutable=["batch_stats"], rngs={"dropout": jax.random.key(1)})
    return optax.sigmoid_binary_cross_entropy(out["tagging"], labels).mean()

  grads = jax.jit(jax.grad(loss))(variables["params"])
  assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))


def test_fcn_needs_one_pool_per_block():
  cfg = models.fcn_config()
  cfg.backend.pools = ((2, 2),)
  model = models.build(cfg, 3)
  with pytest.raises(ValueError, match="one pool per block"):
    model.init(jax.random.key(0), {"audio": jnp.zeros((1, 16000))})
