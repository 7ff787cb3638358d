"""The recommendation job (configs/recommend.py, mirjax/jobs/recommend.py) on the smoke data:
simulated listeners written as Taste Profile triplets, WMF, content regressors, the cold-start
ranking scored against the upper bound and chance, and settings that cannot work."""
import json
import os

import numpy as np
import pytest

from mirjax import config as config_lib
from mirjax.data import listening, song_factors
from mirjax.errors import ConfigError
from mirjax.jobs import recommend


def _config(arg, data_dir):
  c = config_lib.from_file("recommend", arg)
  c.data.data_dir = data_dir
  return c


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("recommend"))
  c = _config("smoke", data_dir)
  return c, workdir, recommend.run(c, workdir)


def test_results_hold_every_method_on_the_cold_songs(run):
  c, workdir, results = run
  with open(os.path.join(workdir, "results.json")) as f:
    saved = json.load(f)
  assert set(saved["methods"]) == set(c.recommend.methods)
  assert saved["method"] in recommend.CONTENT and saved["simulated_listeners"]
  assert saved["map@500"] == saved["methods"][saved["method"]]["map@500"]
  assert saved["auc"] == saved["methods"][saved["method"]]["auc"]
  (seed,) = saved["seeds"].values()
  listen = seed["listening"]
  assert listen["simulated"] and listen["test_users"] > 10 and listen["cold_songs"] > 10
  for name, m in seed["methods"].items():
    assert 0.0 <= m["map@500"] <= 1.0 and 0.0 <= m["auc"] <= 1.0, name
    assert m["users"] == m["n_users"] == listen["test_users"], name  # every test user played a cold song
    assert saved["methods"][name]["map@500"] == m["map@500"] and saved["methods"][name]["map@500_std"] == 0
  # factors learned from the cold songs' own plays rank them far better than chance
  assert seed["methods"]["wmf_upper_bound"]["auc"] > seed["methods"]["random"]["auc"] + 0.1
  assert abs(seed["methods"]["random"]["auc"] - 0.5) < 0.1
  assert np.all(np.diff(seed["wmf_objective"]) < 0)  # WMF's objective fell every sweep
  chosen = seed["wmf_selection"]  # WMF's settings chosen on validation users, by mAP@500
  assert len(chosen["grid"]) == len(c.recommend.reg_grid) * len(c.recommend.alpha_grid) and chosen["valid_users"] > 0
  best = max(chosen["grid"], key=lambda g: g["map@500"])
  assert (chosen["reg"], chosen["alpha"]) == (best["reg"], best["alpha"])
  cnn = seed["methods"]["cnn"]  # the content CNN, trained by the train job on the warm songs' factors
  assert cnn["loss"] == "mse" and cnn["selected_step"] in (6, 12) and np.isfinite(cnn["valid_mse"])
  with open(os.path.join(workdir, "recommendation.md")) as f:
    assert f.read().count("\n") == 2 + len(c.recommend.methods)


def test_a_rerun_reuses_finished_seeds_and_adds_new_ones(run, data_dir, monkeypatch):
  c, workdir, results = run
  calls = []
  real = recommend.one_seed
  monkeypatch.setattr(recommend, "one_seed", lambda config, seed, *a: calls.append(seed) or real(config, seed, *a))
  again = recommend.run(c, workdir)
  assert calls == [] and again["methods"] == results["methods"]
  c2 = _config("smoke", data_dir)
  c2.recommend.seeds = (0, 1)
  both = recommend.run(c2, workdir)
  assert calls == [1] and set(both["seeds"]) == {"0", "1"}
  assert both["seeds"]["0"]["methods"] == results["seeds"]["0"]["methods"]


def test_the_listening_data_is_written_as_taste_profile_triplets(run, data_dir):
  c, workdir, results = run
  plays = listening.read_taste_profile(os.path.join(workdir, "listening", "plays_seed0.tsv"))
  songs = listening.embedded_song_attributes(c.data.config, data_dir=data_dir)
  again = listening.simulate(songs.values, c.recommend.n_users, seed=0, song_ids=songs.song_ids)
  assert plays.n_plays == again.n_plays == results["seeds"]["0"]["listening"]["plays"]
  written = {(plays.user_ids[u], plays.song_ids[s], n) for u, s, n in zip(plays.users, plays.songs, plays.counts)}
  simulated = {(again.user_ids[u], again.song_ids[s], n) for u, s, n in zip(again.users, again.songs, again.counts)}
  assert written == simulated


def _seed0_listening(c, data_dir):
  """(plays, cold-start split, relevant (test users, cold songs) bool) of seed 0, remade as
  the job makes them."""
  r = c.recommend
  songs = listening.embedded_song_attributes(c.data.config, data_dir=data_dir)
  plays = listening.simulate(songs.values, r.n_users, seed=0, song_ids=songs.song_ids)
  split = listening.split_cold_start(plays, songs.split != "train", r.test_user_fraction, seed=0)
  return plays, split, split.test_target.to_csr()[split.test_users][:, split.cold_songs].toarray() > 0


def _assert_ranking_scored(got, scores, relevant, k, abs_tol):
  """`got`'s mAP@k and AUC are those of `scores` by the definitions (AP@k by its formula,
  AUC by scikit-learn), user by user."""
  from test_recommendation_metrics import ap_at_reference, auc_reference  # pylint: disable=import-outside-toplevel
  ap = [ap_at_reference(s, rel, k) for s, rel in zip(scores, relevant)]
  auc = [auc_reference(s, rel) for s, rel in zip(scores, relevant)]
  assert got[f"map@{k}"] == pytest.approx(np.nanmean(ap), abs=abs_tol)
  assert got["auc"] == pytest.approx(np.nanmean(auc), abs=abs_tol)


def test_the_baselines_scores_follow_from_the_listening_data(run, data_dir):
  """Popularity's and chance's mAP@k and AUC of seed 0, recomputed from its listeners by the
  definitions (AP@k by its formula, AUC by scikit-learn, user by user): the job ranks the
  cold songs of each test user against the plays it hid."""
  c, _, results = run
  r = c.recommend
  plays, split, relevant = _seed0_listening(c, data_dir)
  by_train_users = np.isin(plays.users, split.train_users)
  listeners = np.bincount(plays.songs[by_train_users], minlength=plays.n_songs)[split.cold_songs]
  got = results["seeds"]["0"]["methods"]
  for name, scores in (("popularity", np.broadcast_to(listeners.astype(float), relevant.shape)),
                       ("random", np.random.default_rng([0, 17]).random(relevant.shape))):
    _assert_ranking_scored(got[name], scores, relevant, r.k, abs_tol=1e-12)
    assert got[name]["auc_users"] == int(np.sum([0 < rel.sum() < rel.size for rel in relevant])), name


def test_every_factor_methods_scores_follow_from_its_saved_factors(run, data_dir):
  """Each factor method's (WMF upper bound, regressors, CNN) mAP@k and AUC of seed 0,
  recomputed from the factors the job saved and the listeners' hidden plays by the metric
  definitions and scikit-learn."""
  c, workdir, results = run
  r = c.recommend
  _, split, relevant = _seed0_listening(c, data_dir)
  got = results["seeds"]["0"]["methods"]
  with np.load(os.path.join(workdir, "seeds", "seed0_factors.npz")) as z:
    saved = dict(z)
  np.testing.assert_array_equal(saved["test_users"], split.test_users)
  np.testing.assert_array_equal(saved["cold_songs"], split.cold_songs)
  methods = [m for m in r.methods if m not in ("popularity", "random")]
  assert sorted(saved) == sorted(["test_users", "cold_songs"] + [f"{m}/{s}" for m in methods for s in ("users", "songs")])
  for name in methods:
    scores = saved[f"{name}/users"].astype(np.float64) @ saved[f"{name}/songs"].astype(np.float64).T
    _assert_ranking_scored(got[name], scores, relevant, r.k, abs_tol=1e-9)


@pytest.mark.parametrize("field,value,match", [
    ("recommend.solver", "lu", "recommend.solver"),
    ("recommend.methods", ("popularity",), "content method"),
    ("data.name", "mtat", "embedded"),
])
def test_settings_that_cannot_work_say_so(field, value, match, data_dir):
  c = _config("smoke", data_dir)
  section, key = field.split(".")
  c[section][key] = value
  with pytest.raises(ConfigError, match=match):
    recommend.check(c)


def test_the_cnn_trains_on_a_song_factor_dataset_of_the_warm_songs(run, data_dir):
  c, workdir, results = run
  from mirjax.data import pipeline  # pylint: disable=import-outside-toplevel
  cfg = recommend.cnn_config(c, os.path.join(workdir, "factors", "seed0"), 0)
  assert cfg.job == "train" and "recommend" not in cfg and cfg.task.name == "regression"
  sources, info = pipeline.load(cfg.data)
  listen = results["seeds"]["0"]["listening"]
  assert info.target_dim == c.recommend.factors
  assert len(sources["train"]) + len(sources["valid"]) == listen["warm_songs"]  # no cold song trains it
  (run_dir,) = [d for d in os.listdir(os.path.join(workdir, "cnn")) if d.startswith("seed0_")]
  assert run_dir == f"seed0_{song_factors.digest(os.path.join(workdir, 'factors', 'seed0'))}"
  assert os.listdir(os.path.join(workdir, "cnn", run_dir, "best"))


def test_wmf_selection_sees_no_test_user_and_no_cold_song(data_dir, monkeypatch):
  c = _config("smoke", data_dir)
  songs = listening.embedded_song_attributes(c.data.config, data_dir=data_dir)
  plays = listening.simulate(songs.values, c.recommend.n_users, seed=0, song_ids=songs.song_ids)
  split = listening.split_cold_start(plays, songs.split != "train", c.recommend.test_user_fraction, seed=0)
  seen = []
  real = recommend.factorise
  monkeypatch.setattr(recommend, "factorise", lambda config, p, *a, **k: seen.append(p) or real(config, p, *a, **k))
  from mirjax import sharding  # pylint: disable=import-outside-toplevel
  chosen = recommend.select_wmf(c, split, sharding.make_mesh(1), 0)
  assert len(seen) == len(chosen["grid"]) == 2
  for p in seen:
    assert not np.isin(p.users, split.test_users).any() and not np.isin(p.songs, split.cold_songs).any()
    assert p.n_plays < split.train.n_plays  # the validation users' hidden plays are left out
  c.recommend.reg_grid = ()
  assert recommend.select_wmf(c, split, None, 0) == {"reg": c.recommend.reg, "alpha": c.recommend.alpha,
                                                      "grid": [], "valid_users": 0}


def test_config_words():
  assert config_lib.from_file("recommend", "cholesky,log").recommend.solver == "cholesky"
  assert config_lib.from_file("recommend", "wpe").task.loss == "wpe"
  with pytest.raises(ConfigError, match="unknown"):
    config_lib.from_file("recommend", "smok")


def test_the_cnn_trains_with_the_weighted_prediction_error(tmp_path, data_dir):
  c = _config("smoke,wpe", data_dir)
  c.recommend.methods = ("cnn",)
  results = recommend.run(c, str(tmp_path))
  cnn = results["seeds"]["0"]["methods"]["cnn"]
  assert cnn["loss"] == "wpe" and 0.0 <= cnn["auc"] <= 1.0 and np.isfinite(cnn["valid_mse"])
  with np.load(os.path.join(tmp_path, "factors", "seed0", "factors.npz")) as z:
    ids, gram, b, const = z["train_ids"], z["train_wpe_gram"], z["train_wpe_b"], z["train_wpe_c"]
  # the stored terms give, for any y, the error over the training users of the seed's own WMF
  songs = listening.embedded_song_attributes(c.data.config, data_dir=data_dir)
  plays = listening.simulate(songs.values, c.recommend.n_users, seed=0, song_ids=songs.song_ids)
  split = listening.split_cold_start(plays, songs.split != "train", c.recommend.test_user_fraction, seed=0)
  from mirjax import sharding  # pylint: disable=import-outside-toplevel
  chosen = results["seeds"]["0"]["wmf_selection"]
  fit = recommend.factorise(c, split.train, sharding.make_mesh(c.mesh.num_devices), 0, reg=chosen["reg"],
                            alpha=chosen["alpha"])
  X = fit.user_factors[split.train_users]
  counts = split.train.to_csr().toarray()[split.train_users]
  P = (counts > 0).astype(float)
  C = np.asarray(recommend._confidence(c, counts.ravel(), chosen["alpha"])).reshape(counts.shape)  # pylint: disable=protected-access
  y = np.random.default_rng(0).normal(size=(3, X.shape[1]))
  for row in range(3):
    song = list(songs.song_ids).index(ids[row])
    direct = np.sum(C[:, song] * (P[:, song] - X @ y[row]) ** 2) / len(X)
    stored = y[row] @ gram[row] @ y[row] - 2 * b[row] @ y[row] + const[row]
    assert stored == pytest.approx(direct, rel=1e-3)


def test_real_plays_from_a_triplet_file_give_the_simulated_runs_results(run, data_dir, tmp_path):
  """The plays the smoke run simulated, read back from its triplet file as real data, give
  the same metrics for every method."""
  c, workdir, results = run
  c2 = _config("smoke", data_dir)
  c2.recommend.plays_file = os.path.join(workdir, "listening", "plays_seed0.tsv")
  c2.recommend.methods = ("wmf_upper_bound", "linear", "popularity", "random")
  again = recommend.run(c2, str(tmp_path))
  assert not again["simulated_listeners"] and again["plays_file"]["plays_left_out"] == 0
  for name in c2.recommend.methods:
    assert again["seeds"]["0"]["methods"][name]["map@500"] == pytest.approx(
        results["seeds"]["0"]["methods"][name]["map@500"], abs=1e-6), name
  assert again["seeds"]["0"]["listening"]["simulated"] is False


def test_a_folder_of_songs_with_a_triplet_file(tmp_path, data_dir):
  import soundfile as sf  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  folder = tmp_path / "songs"
  folder.mkdir()
  rows = ["path,tags,split"]
  for i in range(24):
    t = np.arange(16000) / 16000
    sf.write(folder / f"TR{i:03d}.wav", 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t), 16000)
    rows.append(f"TR{i:03d}.wav,{'low' if i % 2 else 'high'},{'train' if i < 16 else ('valid' if i < 20 else 'test')}")
  (folder / "tags.csv").write_text("\n".join(rows) + "\n")
  lines = [f"U{u}\tTR{s:03d}\t{rng.integers(1, 5)}" for u in range(60) for s in rng.choice(24, 8, replace=False)]
  lines.append("U0\tNOT_A_CLIP\t3")
  (tmp_path / "plays.txt").write_text("\n".join(lines) + "\n")
  c = _config("smoke", data_dir)
  c.data.name, c.data.manual_dir, c.data.clip_seconds = "folder", str(folder), 1.0
  c.data.crop_seconds, c.recommend.clip_seconds = 1.0, 1.0
  c.recommend.plays_file = str(tmp_path / "plays.txt")
  c.recommend.methods, c.recommend.k = ("linear", "popularity", "random"), 10
  recommend.check(c)
  out = recommend.run(c, str(tmp_path / "run"))
  assert out["plays_file"]["songs_without_audio"] == 1 and out["plays_file"]["plays_left_out"] == 1
  listen = out["seeds"]["0"]["listening"]
  assert listen["songs"] == 24 and listen["cold_songs"] == 8 and listen["test_users"] > 0
  c.data.name = "mtat"
  with pytest.raises(ConfigError, match="folder"):
    recommend.check(c)
