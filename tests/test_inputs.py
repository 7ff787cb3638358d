"""A batch is a dict of named inputs: a model that reads audio and face frames goes through
the one pure train step, the per-branch gradients and the combiner unchanged."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.experimental import aggregating

from mirjax import inputs, models, optim, sharding, steps
from mirjax.models import speaker
from mirjax.system import System, init_state
from mirjax.tasks.classification import Classification
from tests.helpers import assert_sharded_step_matches_single_device

N_CLASSES, SAMPLES = 5, 3200


def _av_system(variant="multiview"):
  cfg = speaker.speaker_config(variant)
  cfg.face.size, cfg.face.n_frames = 32, 2
  # two stages per encoder (a strided one included): a third less to compile than four
  cfg.audio.widths, cfg.audio.blocks = (8, 16), (1, 1)
  cfg.face.widths, cfg.face.blocks = (8, 16), (1, 1)
  task = Classification([f"spk{i}" for i in range(N_CLASSES)], branches=tuple(cfg.branches))
  model = models.build(cfg, N_CLASSES, task.branches)
  tx = optim.build(optim_config(), task.branches, total_steps=10)
  example = models.example_inputs(cfg, SAMPLES)
  make = jax.jit(functools.partial(init_state, model=model, tx=tx, example_inputs=example))
  return System(model, task, tx, SAMPLES, make, jax.eval_shape(make, jax.random.key(0))), cfg


def optim_config():
  from mirjax import config as config_lib
  c = config_lib.base(models.default_config("logmel")).optim
  c.learning_rate = 1e-2
  return c


def _batch(n, cfg, chunks=None, seed=0):
  rng = np.random.default_rng(seed)
  lead = (n,) if chunks is None else (n, chunks)
  return {"audio": rng.standard_normal(lead + (SAMPLES,)).astype(np.float32) * 0.1,
          "frames": rng.random(lead + (cfg.face.n_frames, cfg.face.size, cfg.face.size, 3)).astype(np.float32),
          "label": rng.integers(0, N_CLASSES, n).astype(np.int32)}


def test_model_inputs_are_the_named_inputs_of_a_batch():
  batch = {"audio": 1, "frames": 2, "label": 3, "mask": 4}
  assert inputs.model_inputs(batch) == {"audio": 1, "frames": 2}
  assert inputs.audio_of({"audio": 5}) == 5 and inputs.audio_of(6) == 6
  folded, (b, c) = inputs.fold_chunks({"audio": np.zeros((2, 3, 7)), "frames": np.zeros((2, 3, 4, 5, 5, 3))})
  assert (b, c) == (2, 3) and folded["audio"].shape == (6, 7) and folded["frames"].shape == (6, 4, 5, 5, 3)


def test_an_audio_visual_train_step_on_8_devices_equals_1_device():
  system, cfg = _av_system("multiview")
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                           optim.combine.static_weights([1.0, 1.0]), optax.sgd(1e-2))
  assert_sharded_step_matches_single_device(system, tx, _batch(16, cfg))


def test_the_eval_step_scores_every_chunk_of_every_input():
  """Chunked inputs (batch, chunks, ...) are folded together: the score of an example is the
  mean of its chunks' scores, each chunk's audio seen with that chunk's frames."""
  system, cfg = _av_system("fusion")
  state = system.make_state(jax.random.key(0))
  batch = _batch(4, cfg, chunks=2, seed=1)
  # jitted: run eagerly, op by op, each call takes longer than compiling it once
  eval_step = jax.jit(functools.partial(steps.eval_step, model=system.model, task=system.task))
  apply = jax.jit(system.model.apply)
  got = eval_step(state, batch)
  variables = {"params": state.params, **state.model_state}
  for k in range(2):
    one = apply(variables, {"audio": batch["audio"][:, k], "frames": batch["frames"][:, k]})
    if k == 0:
      want = jax.nn.softmax(one["joint"]) / 2
    else:
      want = want + jax.nn.softmax(one["joint"]) / 2
  np.testing.assert_allclose(got["joint"], want, rtol=1e-5, atol=1e-6)
  # the frames matter: other frames, other scores
  other = dict(batch, frames=batch["frames"][::-1])
  assert not np.allclose(eval_step(state, other)["joint"], got["joint"])


def test_audio_models_take_the_dict_or_the_array():
  c = models.default_config("logmel")
  model = models.build(c, 3)
  audio = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16000)), jnp.float32)
  variables = jax.jit(model.init)(jax.random.key(0), {"audio": audio})
  apply = jax.jit(model.apply)  # compiled once per input structure: faster than op by op
  np.testing.assert_array_equal(apply(variables, {"audio": audio, "frames": jnp.zeros(1)})["tagging"],
                                apply(variables, audio)["tagging"])


def test_the_pipeline_carries_face_frames_beside_the_audio():
  """Training batches hold each example's frames (uint8 -> [0, 1]) beside its audio crop;
  evaluation batches repeat them for every chunk, and the padding rows are zeros."""
  from mirjax.data import pipeline
  rng = np.random.default_rng(0)
  source = [{"audio": rng.integers(-3000, 3000, 4000).astype(np.int16),
             "frames": rng.integers(0, 256, (2, 4, 4, 3)).astype(np.uint8), "label": np.int32(i)}
            for i in range(5)]
  batch = next(pipeline.train_iterator(source, local_batch=4, crop=1000, seed=0, target="label",
                                       read_threads=1))
  assert batch["audio"].shape == (4, 1000) and batch["frames"].shape == (4, 2, 4, 4, 3)
  for frames, label in zip(batch["frames"], batch["label"]):
    np.testing.assert_allclose(frames, source[int(label)]["frames"] / 255.0, rtol=1e-6)
  batches = list(pipeline.eval_batches(source, global_batch=8, crop=1000, n_chunks=3, target="label",
                                       read_threads=1))
  assert len(batches) == 1
  b = batches[0]
  assert b["frames"].shape == (8, 3, 2, 4, 4, 3) and b["mask"].tolist() == [True] * 5 + [False] * 3
  for i in range(5):
    for c in range(3):
      np.testing.assert_allclose(b["frames"][i, c], source[i]["frames"] / 255.0, rtol=1e-6)
  assert not b["frames"][5:].any()
