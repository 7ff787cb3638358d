"""Audio-visual speaker verification end to end: sources in the VoxCeleb layout, the
verification task (margin by training step, trial scoring per condition, AS-norm), the
sharded train step, and smoke runs of every variant of configs/avsv.py with their score
files and the evaluation-only command."""
import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from optax.experimental import aggregating

from mirjax import models, optim, steps
from mirjax.data import speakers, voxceleb
from mirjax.errors import DataError
from mirjax.evaluation import verification as vf
from mirjax.models import margin, speaker
from mirjax.system import System, init_state
from mirjax.tasks.verification import Verification
from tests.helpers import assert_sharded_step_matches_single_device
from tests.test_inputs import _batch, optim_config
from tests.test_voxceleb import make_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tests.test_inputs import N_CLASSES, SAMPLES  # noqa: E402  (the same batches)


def _loss_cfg(**kw):
  c = speaker.speaker_config("multiview").loss
  with c.unlocked():
    c.update(dict(kind="aam", margin=0.3, scale=16.0, initial_margin=0.0, warmup_start=2,
                  warmup_end=4, schedule="linear", **kw))
  return c


def _system(variant="multiview"):
  cfg = speaker.speaker_config(variant)
  cfg.face.size, cfg.face.n_frames = 32, 2
  # two stages per encoder, as configs/avsv.py:smoke: a third less to compile than four
  cfg.audio.widths, cfg.audio.blocks = (8, 16), (1, 1)
  cfg.face.widths, cfg.face.blocks = (8, 16), (1, 1)
  task = Verification([f"spk{i}" for i in range(N_CLASSES)], tuple(cfg.branches), _loss_cfg())
  model = models.build(cfg, N_CLASSES, task.branches)
  tx = optim.build(optim_config(), task.branches, total_steps=10)
  make = jax.jit(functools.partial(init_state, model=model, tx=tx,
                                   example_inputs=models.example_inputs(cfg, SAMPLES)))
  return System(model, task, tx, SAMPLES, make, jax.eval_shape(make, jax.random.key(0))), cfg


def test_the_train_step_trains_with_the_margin_of_its_step():
  """Before the warm-up the loss is plain normalised softmax (margin 0); after it, the final
  margin; in between the schedule's value (linear here)."""
  system, cfg = _system()
  state = system.make_state(jax.random.key(0))
  batch = _batch(4, cfg)
  variables = {"params": state.params, **state.model_state}
  # jitted: run eagerly, op by op, each call takes longer than compiling it once
  cos = jax.jit(lambda v, b: system.model.apply(v, b, train=True, mutable=["batch_stats"],
                                                rngs={"dropout": jax.random.key(1)})[0])(variables, batch)
  train_step = jax.jit(functools.partial(steps.train_step, model=system.model, task=system.task,
                                         tx=system.tx))  # the step is traced, as in training
  for step, m in ((0, 0.0), (3, 0.15), (10, 0.3)):
    _, got = train_step(state.replace(step=np.int32(step)), batch)
    for b in ("audio", "visual"):
      want = margin.margin_loss("aam", cos[b], batch["label"], m, 16.0).mean()
      np.testing.assert_allclose(got[f"loss/{b}"], want, rtol=2e-5, err_msg=f"step {step} {b}")
  held_out = system.task.losses(cos, batch)  # no step: the final margin
  np.testing.assert_allclose(held_out["audio"], margin.margin_loss("aam", cos["audio"], batch["label"],
                                                                   0.3, 16.0).mean(), rtol=1e-6)


def test_a_verification_train_step_on_8_devices_equals_1_device():
  system, cfg = _system("multiview")
  tx = aggregating.process(optax.with_extra_args_support(optax.identity()),
                          optim.combine.static_weights([1.0, 1.0]), optax.sgd(1e-2))
  assert_sharded_step_matches_single_device(system, tx, _batch(16, cfg))


def _random_embeddings(rng, n, d, offset=0.0):
  return rng.standard_normal((n, d)) + offset


def test_one_modality_scores_are_wespeakers_cosine_and_as_norm():
  rng = np.random.default_rng(0)
  keys = [f"u{i}" for i in range(12)]
  emb = _random_embeddings(rng, 12, 8, offset=0.5)
  cohort, labels = _random_embeddings(rng, 30, 8, offset=0.5), np.repeat(np.arange(10), 3)
  e, t = rng.integers(0, 12, 40), rng.integers(0, 12, 40)
  trials = vf.Trials(np.array(keys)[e], np.array(keys)[t], rng.integers(0, 2, 40).astype(np.int8))
  centroids = np.stack([cohort[labels == s].mean(axis=0) for s in range(10)])
  mean = cohort.mean(axis=0)
  table = dict(zip(keys, emb))
  for norm, top_n in (("none", 5), ("asnorm", 5), ("asnorm", 50)):
    task = Verification(["a"], ("audio",), _loss_cfg(), score_norm=norm, top_n=top_n)
    got = task.score({"audio": emb}, keys, trials, {"audio": cohort}, labels)
    assert set(got) == {"audio"}
    want = vf.cosine_scores(trials.enrol, trials.test, table, mean)
    if norm == "asnorm":  # a top_n beyond the cohort's 10 speakers uses all of them
      want = vf.as_norm(want, trials.enrol, trials.test, table, centroids, min(top_n, 10), mean)
    np.testing.assert_allclose(got["audio"], want, rtol=1e-10, atol=1e-12)


def test_cross_modal_scores_normalise_each_side_by_the_other_sides_cohort():
  rng = np.random.default_rng(1)
  keys = [f"u{i}" for i in range(6)]
  audio, visual = _random_embeddings(rng, 6, 4, 1.0), _random_embeddings(rng, 6, 4, -1.0)
  ca, cv = _random_embeddings(rng, 8, 4, 1.0), _random_embeddings(rng, 8, 4, -1.0)
  labels = np.repeat(np.arange(4), 2)
  trials = vf.Trials(np.array(["u0", "u1", "u2"]), np.array(["u3", "u4", "u5"]), np.array([1, 0, 1], np.int8))
  task = Verification(["a"], ("audio", "visual"), _loss_cfg(), cross_modal=True, top_n=3)
  got = task.score({"audio": audio, "visual": visual}, keys, trials, {"audio": ca, "visual": cv}, labels)
  assert set(got) == {"audio", "visual", "fusion", "score_fusion", "cross_audio_visual", "cross_visual_audio"}
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  cent = lambda c: np.stack([c[labels == s].mean(axis=0) for s in range(4)])
  a, v = unit(audio - ca.mean(0)), unit(visual - cv.mean(0))
  top = lambda x, c: np.sort(unit(x) @ unit(c).T, axis=1)[:, -3:]
  raw = np.sum(a[:3] * v[3:], axis=1)
  se, st = top(a[:3], cent(cv) - cv.mean(0)), top(v[3:], cent(ca) - ca.mean(0))
  want = 0.5 * ((raw - se.mean(1)) / se.std(1) + (raw - st.mean(1)) / st.std(1))
  np.testing.assert_allclose(got["cross_audio_visual"], want, rtol=1e-10)
  np.testing.assert_allclose(got["score_fusion"], 0.5 * (got["audio"] + got["visual"]), rtol=1e-12)
  no_cross = Verification(["a"], ("audio", "visual"), _loss_cfg(), top_n=3)
  assert "cross_audio_visual" not in no_cross.score({"audio": audio, "visual": visual}, keys, trials,
                                                     {"audio": ca, "visual": cv}, labels)
  metrics = task.evaluate_scores(got, trials.label)
  assert metrics["eer"] == metrics["audio/eer"] == vf.eer(trials.label, got["audio"])[0]


def test_sources_of_a_voxceleb_folder(tmp_path):
  """Training utterances of the dev speakers, labelled by speaker; the trial utterances with
  the kept trials; a cohort drawn from training; dropped trials counted."""
  vox = voxceleb.read_voxceleb(make_folder(tmp_path))
  sources, info = speakers.verification_sources(vox, "voxceleb/test", trial_list="veri_test2.txt",
                                                n_frames=2, face_size=16, cohort_per_speaker=1)
  train, test = sources["train"], sources["test"]
  assert info.class_names == ("id10001", "id10002") and info.num_examples["dropped_trials"] == 5
  assert len(train) == 3 and sorted(int(train[i]["label"]) for i in range(3)) == [0, 0, 1]
  ex = train[0]
  assert ex["audio"].dtype == np.float32 and ex["frames"].shape == (2, 16, 16, 3)
  assert len(test.trials.label) == 3 and set(test.trials.enrol) | set(test.trials.test) == set(test.keys)
  assert len(test.cohort) == 2 and {int(test.cohort[i]["label"]) for i in range(2)} == {0, 1}
  audio_only, _ = speakers.verification_sources(vox, "v", trial_list="veri_test2.txt", n_frames=0,
                                                face_size=0, cohort_per_speaker=1)
  assert "frames" not in audio_only["train"][0]
  with pytest.raises(DataError, match="list_test_hard2.txt"):
    speakers.verification_sources(vox, "v", trial_list="list_test_hard2.txt", n_frames=0, face_size=0,
                                  cohort_per_speaker=1)
  leaky = dataclasses.replace(vox, speakers={**vox.speakers, "id10270": vox.speakers["id10270"]._replace(set="dev")})
  with pytest.raises(DataError, match="VoxCeleb2 dev"):
    speakers.verification_sources(leaky, "v", trial_list="veri_test2.txt", n_frames=0, face_size=0,
                                  cohort_per_speaker=1)


EXPECTED = {"audio": {"audio"}, "visual": {"visual"},
            "fusion": {"audio", "visual", "fusion", "score_fusion"},
            "score_fusion": {"audio", "visual", "fusion", "score_fusion"},
            "multiview": {"audio", "visual", "fusion", "score_fusion", "cross_audio_visual",
                          "cross_visual_audio"}}


def _main(*args):
  p = subprocess.run([sys.executable, "-m", "mirjax.main", *args], cwd=ROOT, capture_output=True,
                     text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-4000:]
  return p


@pytest.fixture(scope="module")
def smoke_compare(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("avsv") / "compare"
  _main("--config=configs/avsv.py:smoke,compare", f"--workdir={workdir}")
  return workdir


def test_every_variant_trains_and_scores_its_conditions(smoke_compare):
  with open(smoke_compare / "comparison.md") as f:
    table = f.read()
  for variant, conditions in EXPECTED.items():
    with open(smoke_compare / variant / "seed0" / "results.json") as f:
      results = json.load(f)
    got = {k.split("/")[1] for k in results if k.startswith("test/") and k.endswith("/eer") and k.count("/") == 2}
    assert got == conditions, variant
    for c in conditions:  # the reported figures are those of the trials the score file holds
      trials, scores = vf.read_scores(smoke_compare / variant / "seed0" / "scores" / f"{c}.veri_test2.score")
      assert results[f"test/{c}/eer"] == pytest.approx(vf.eer(trials.label, scores)[0], abs=1e-12)
    assert f"| {variant} |" in table
    scores = sorted(os.listdir(smoke_compare / variant / "seed0" / "scores"))
    assert scores == sorted(f"{c}.veri_test2.score" for c in conditions)
  assert "n/a" in table  # the voice-only system has no face condition


def test_score_files_give_the_reported_figures_and_the_eval_command_rescores(smoke_compare, tmp_path):
  run = smoke_compare / "multiview" / "seed0"
  with open(run / "results.json") as f:
    results = json.load(f)
  for c in EXPECTED["multiview"]:
    trials, scores = vf.read_scores(run / "scores" / f"{c}.veri_test2.score")
    assert results[f"test/{c}/eer"] == pytest.approx(vf.eer(trials.label, scores)[0], abs=1e-12)
    assert results[f"test/{c}/min_dcf"] == pytest.approx(vf.min_dcf(trials.label, scores)[0], abs=1e-12)
  out = tmp_path / "eval"
  _main("--config=configs/eval.py", f"--config.trained={run}", f"--workdir={out}")
  with open(out / "eval.json") as f:
    got = json.load(f)["metrics"]["test"]
  for c in EXPECTED["multiview"]:
    assert got[f"{c}/eer"] == pytest.approx(results[f"test/{c}/eer"], abs=1e-6)
    with open(out / "scores" / f"{c}.veri_test2.score") as f1, open(run / "scores" / f"{c}.veri_test2.score") as f2:
      a, b = [line.split() for line in f1], [line.split() for line in f2]
    assert [x[:2] + x[3:] for x in a] == [x[:2] + x[3:] for x in b]
    np.testing.assert_allclose([float(x[2]) for x in a], [float(x[2]) for x in b], rtol=1e-5, atol=1e-5)
