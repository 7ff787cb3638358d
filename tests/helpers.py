"""Checks several test files share."""
import jax
import numpy as np
import optax
import pytest

from mirjax import sharding, steps


def assert_sharded_step_matches_single_device(system, tx, batch, n_steps=2, **step_kwargs):
  """`n_steps` train steps of `system` with optimizer `tx` on an 8-device mesh and on one
  device agree: loss to 1e-4 relative, parameters to 2 % of how far they moved (max-pool
  arg-maxes can flip on rounding noise and route a few gradients elsewhere)."""
  make = lambda key: system.make_state(key).replace(opt_state=tx.init(system.make_state(key).params))
  # One start, replicated on each mesh: both runs start from the same state, which is
  # compiled once rather than once per mesh (and once more for the parameters' start).
  start = jax.jit(make)(jax.random.key(0))
  p0 = jax.tree.map(np.asarray, start.params)
  results = []
  for n in (8, 1):
    mesh = sharding.make_mesh(n)
    rep = sharding.replicated(mesh)
    state = jax.device_put(start, rep)
    step = jax.jit(lambda s, b: steps.train_step(s, b, model=system.model, task=system.task, tx=tx,
                                                 **step_kwargs),
                   in_shardings=(rep, sharding.batch_sharding(mesh)), out_shardings=rep)
    for _ in range(n_steps):
      state, metrics = step(state, sharding.to_global(batch, mesh))
    results.append((jax.tree.map(np.asarray, state.params), metrics))
  (p8, m8), (p1, m1) = results
  np.testing.assert_allclose(m8["loss"], m1["loss"], rtol=1e-4)
  moved = optax.tree.norm(jax.tree.map(np.subtract, p1, p0))
  assert moved > 0
  assert optax.tree.norm(jax.tree.map(np.subtract, p8, p1)) < 0.02 * moved


def rescore_with_sklearn(workdir, data_dir, split="test"):
  """The metrics a finished run in `workdir` reported for `split`, recomputed outside its
  evaluation path: the checkpoint the run tested (WORKDIR/best when it selected a step, else
  its last step) restored on one device, every example of `split` read on its own and
  scored as `eval.n_chunks` evenly spaced crops (probabilities averaged over crops and over
  the prediction's branches), and the metrics taken by scikit-learn. Returns
  {"roc_auc", "pr_auc", "per_tag_roc_auc"} for tagging (macro over the tags with both
  classes), {"accuracy", "balanced_accuracy"} for classification."""
  import json
  import os

  import ml_collections
  from sklearn import metrics as skm

  from mirjax import checkpoint
  from mirjax.data import pipeline

  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  step = results["selected_step"]
  run = checkpoint.load_trained_run(
      workdir, step, sharding.make_mesh(1),
      folder="checkpoints" if results["selected_by"] == "last step" else "best")
  config, system, state = ml_collections.ConfigDict(run.config.to_dict()), run.system, run.state
  config.data.data_dir = data_dir
  sources, _ = pipeline.load(config.data)
  task, crop, n_chunks = system.task, system.crop, config.eval.n_chunks
  score = jax.jit(lambda s, b: steps.eval_step(s, b, model=system.model, task=task))
  probs, labels = [], []
  for i in range(len(sources[split])):
    ex = sources[split][i]
    if "audio" in ex:
      audio = np.asarray(ex["audio"], np.float32) / (32768.0 if ex["audio"].dtype == np.int16 else 1.0)
      audio = np.concatenate([audio, np.zeros(max(crop - len(audio), 0), np.float32)])
      starts = np.round(np.linspace(0, len(audio) - crop, n_chunks)).astype(int)
      batch = {"audio": np.stack([audio[s:s + crop] for s in starts])[None]}
    else:  # a feature dataset (e.g. a kmeans run's): one vector per example
      batch = {"features": np.asarray(ex["features"], np.float32)[None, None]}
    out = score(state, batch)
    probs.append(np.mean([np.asarray(out[b][0]) for b in task.predict_from], axis=0))
    labels.append(np.asarray(ex[task.target]))
  probs, labels = np.array(probs, np.float64), np.array(labels)
  if task.target == "label":
    predicted = probs.argmax(axis=1)
    return {"accuracy": skm.accuracy_score(labels, predicted),
            "balanced_accuracy": skm.balanced_accuracy_score(labels, predicted)}
  both = [j for j in range(labels.shape[1]) if 0 < labels[:, j].sum() < len(labels)]
  assert both, "no tag has both classes in this split: nothing to compare"
  roc = {task.tag_names[j]: skm.roc_auc_score(labels[:, j], probs[:, j]) for j in both}
  pr = [skm.average_precision_score(labels[:, j], probs[:, j]) for j in both]
  return {"roc_auc": float(np.mean(list(roc.values()))), "pr_auc": float(np.mean(pr)),
          "per_tag_roc_auc": roc}


def assert_reported_metrics_match(results, rescored, split="test", abs_tol=1e-6):
  """Every metric of `rescore_with_sklearn` equals the run's `results` of `split`; for
  per-tag ROC-AUCs, on the tags scikit-learn scored (the others are NaN in results)."""
  for key, want in rescored.items():
    got = results[f"{split}/{key}"]
    if isinstance(want, dict):
      assert {t: got[t] for t in want} == {t: pytest.approx(v, abs=abs_tol) for t, v in want.items()}, key
    else:
      assert got == pytest.approx(want, abs=abs_tol), (key, got, want)


def assert_audio_stored_as_int16_bytes(version_dir, sources) -> dict:
  """Checks a built TFDS dataset (its version folder) stores `audio` as raw int16 bytes and
  that `sources` (split -> random-access source) read exactly those samples back.

  The records are read from the array_record files themselves, not through TFDS's decoding:
  each must hold its audio as one bytes value (not the int64 list of TFDS's default
  encoding). Returns {split: [int16 audio of each record, in the source's order]}.
  """
  import glob  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel

  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from array_record.python.array_record_module import ArrayRecordReader  # pylint: disable=import-outside-toplevel
  from tensorflow_datasets.proto import tf_example_pb2  # pylint: disable=import-outside-toplevel

  feature = tfds.features.FeatureConnector.from_config(os.fspath(version_dir))["audio"]
  assert feature.np_dtype == np.int16
  assert feature.to_json_content().encoding == tfds.features.Encoding.BYTES.value
  stored = {}
  for split, source in sources.items():
    shards = sorted(glob.glob(os.path.join(os.fspath(version_dir), f"*-{split}.array_record-*")))
    assert shards, (version_dir, split)
    records = []
    for shard in shards:
      reader = ArrayRecordReader(shard)
      records += reader.read_all()
      reader.close()
    assert len(records) == len(source), split
    stored[split] = []
    for i, record in enumerate(records):
      audio = tf_example_pb2.Example.FromString(record).features.feature["audio"]
      assert audio.WhichOneof("kind") == "bytes_list" and len(audio.bytes_list.value) == 1
      raw = np.frombuffer(audio.bytes_list.value[0], np.int16)
      read = source[i]["audio"]
      assert read.dtype == np.int16 and read.shape == raw.shape, (split, i, read.dtype, read.shape)
      np.testing.assert_array_equal(read, raw)
      stored[split].append(raw)
  return stored
