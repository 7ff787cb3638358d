"""mirjax.evaluation.verification against straightforward loops over every distinct threshold,
against scikit-learn's roc_curve, on hand-computed cases with ties, and for its files."""
import numpy as np
import pytest
from sklearn import metrics as skm

from mirjax.evaluation import verification as V

TOL = 1e-12


# ------------------------------------------------ references written out from the definitions


def sweep(y, s):
  """(t, P_miss, P_fa) for every distinct score t and +inf, accepting score >= t."""
  y, s = np.asarray(y, bool), np.asarray(s, np.float64)
  points = []
  for t in sorted(set(s.tolist())) + [np.inf]:
    points.append((t, np.mean(s[y] < t), np.mean(s[~y] >= t)))
  return points


def ref_eer(y, s):
  """NIST interpolation: the crossing of P_miss = P_fa on the first segment reaching it."""
  points = sweep(y, s)
  for (_, m0, f0), (t1, m1, f1) in zip(points, points[1:]):
    if m1 - f1 >= 0 > m0 - f0:
      u = (f0 - m0) / ((f0 - m0) - (f1 - m1))  # fraction of the way from point 0 to point 1
      return m0 + u * (m1 - m0), t1
  raise AssertionError("no crossing")


def ref_eer_speechbrain(y, s):
  """SpeechBrain's EER definition: distinct scores and midpoints, reject score <= t, first
  threshold with the smallest |FAR - FRR|, EER = (FAR + FRR) / 2."""
  y, s = np.asarray(y, bool), np.asarray(s, np.float64)
  distinct = np.unique(s)
  best = None
  for t in np.sort(np.r_[distinct, (distinct[1:] + distinct[:-1]) / 2]):
    frr, far = np.mean(s[y] <= t), np.mean(s[~y] > t)
    if best is None or abs(far - frr) < best[0]:
      best = (abs(far - frr), (far + frr) / 2, t)
  return best[1], best[2]


def ref_min_dcf(y, s, p_target=0.01, c_miss=1.0, c_fa=1.0):
  best = min((c_miss * m * p_target + c_fa * f * (1 - p_target), t) for t, m, f in sweep(y, s))
  return best[0] / min(c_miss * p_target, c_fa * (1 - p_target)), best[1]


def sklearn_eer(y, s):
  """The same crossing found on scikit-learn's ROC curve (thresholds decreasing, score >= t)."""
  fpr, tpr, thr = skm.roc_curve(y, s)
  d = (1 - tpr) - fpr  # from 1 (reject all) down to -1 (accept all)
  i = np.flatnonzero(d >= 0)[-1]
  u = d[i] / (d[i] - d[i + 1])
  return (1 - tpr[i]) + u * ((1 - tpr[i + 1]) - (1 - tpr[i]))


def random_trials(rng, n, ties):
  y = rng.random(n) < rng.uniform(0.1, 0.9)
  y[:2] = (True, False)  # both classes
  s = rng.standard_normal(n) + 1.5 * y
  if ties:
    s = np.round(s * 2) / 2  # a handful of levels: many ties, across classes
  return y.astype(np.int64), s


# ----------------------------------------------------------------------------- EER, minDCF


@pytest.mark.parametrize("n", [2, 3, 10, 57, 400, 3000])
@pytest.mark.parametrize("ties", [False, True])
def test_eer_and_min_dcf_match_the_threshold_loop_and_sklearn(n, ties):
  rng = np.random.default_rng(n + 7 * ties)
  for _ in range(3 if n > 1000 else 10):
    y, s = random_trials(rng, n, ties)
    value, threshold = V.eer(y, s)
    ref_value, ref_threshold = ref_eer(y, s)
    assert abs(value - ref_value) < TOL and threshold == ref_threshold
    assert abs(value - sklearn_eer(y, s)) < TOL
    assert V.eer(y, s, rule="nearest")[0] == pytest.approx(ref_eer_speechbrain(y, s)[0], abs=TOL)
    for p_target, c_miss, c_fa in ((0.01, 1.0, 1.0), (0.05, 1.0, 1.0), (0.5, 10.0, 1.0), (0.9, 1.0, 3.0)):
      got = V.min_dcf(y, s, p_target, c_miss, c_fa)
      want = ref_min_dcf(y, s, p_target, c_miss, c_fa)
      assert abs(got[0] - want[0]) < TOL and got[1] == want[1]
      assert 0 <= got[0] <= 1


def test_untied_scores_match_a_per_trial_sweep():
  """Without ties, one point per trial in sort order (wespeaker's compute_pmiss_pfa_rbst, which
  leaves out accept-all) gives the same EER, threshold and minDCF at p_target 0.01."""
  rng = np.random.default_rng(5)
  for n in (20, 200, 2000):
    y, s = random_trials(rng, n, ties=False)
    y[:4] = 0  # point 0 (the lowest trial rejected) must lie before the crossing
    s[:4] = s.min() - 1 - np.arange(4)
    order = np.argsort(s)
    tar = y[order] == 1
    fnr = np.cumsum(tar) / tar.sum()
    fpr = 1 - np.cumsum(~tar) / (~tar).sum()
    d = fnr - fpr
    x1, x2 = np.flatnonzero(d >= 0)[0], np.flatnonzero(d < 0)[-1]
    eer = fnr[x1] + d[x1] / (d[x1] - d[x2]) * (fnr[x2] - fnr[x1])
    value, threshold = V.eer(y, s)
    assert abs(value - eer) < TOL
    assert threshold == np.sort(s)[x1 + 1]  # wespeaker reports sort(s)[x1], the last score rejected
    assert abs(V.min_dcf(y, s)[0] - np.min(0.01 * fnr + 0.99 * fpr) / 0.01) < 1e-10


def test_nearest_rule_picks_speechbrains_operating_point():
  """SpeechBrain's threshold t (reject score <= t) and ours (accept score >= t) name the same
  operating point: the same trials are accepted."""
  rng = np.random.default_rng(3)
  for _ in range(20):
    y, s = random_trials(rng, 40, ties=True)
    _, ours = V.eer(y, s, rule="nearest")
    _, theirs = ref_eer_speechbrain(y, s)
    np.testing.assert_array_equal(s >= ours, s > theirs)


def test_unnormalised_min_dcf_is_speechbrains_cost():
  rng = np.random.default_rng(4)
  y, s = random_trials(rng, 300, ties=True)
  distinct = np.unique(s)
  cost = min(0.01 * np.mean(s[y == 1] <= t) + 0.99 * np.mean(s[y == 0] > t)
             for t in np.r_[distinct, (distinct[1:] + distinct[:-1]) / 2])
  assert V.min_dcf(y, s, normalize=False)[0] == pytest.approx(cost, abs=TOL)
  assert V.min_dcf(y, s)[0] == pytest.approx(cost / 0.01, abs=1e-10)


def test_perfect_separation():
  y = np.array([0, 1, 0, 1, 1, 0])
  s = np.array([0.1, 0.7, 0.3, 0.9, 0.8, 0.2])
  assert V.eer(y, s) == (0.0, 0.7)
  assert V.eer(y, s, rule="nearest") == (0.0, 0.7)
  assert V.min_dcf(y, s) == (0.0, 0.7)


def test_all_scores_equal():
  """One threshold splits nothing: accept all (P_fa 1) or reject all (P_miss 1). The EER is the
  midpoint of that segment, 0.5; the cheaper end costs the default cost, minDCF 1."""
  y, s = np.array([1, 0, 0, 1, 0]), np.full(5, 0.25)
  assert V.eer(y, s) == (0.5, np.inf)
  assert V.eer(y, s, rule="nearest") == (0.5, 0.25)
  assert V.min_dcf(y, s) == (1.0, np.inf)  # p_target 0.01: rejecting all is cheaper
  assert V.min_dcf(y, s, p_target=0.9) == (1.0, 0.25)  # here accepting all is


def test_ties_by_hand():
  """Targets 0.9, 0.5, 0.5; non-targets 0.5, 0.1, 0.5, 0.2. Points (t: P_miss, P_fa): 0.1: 0, 1;
  0.2: 0, 3/4; 0.5: 0, 1/2; 0.9: 2/3, 0; inf: 1, 0. The crossing on the segment from 0.5 to 0.9
  is at 2/7. A sweep splitting the tied 0.5s one trial at a time (wespeaker's) would give a
  number that depends on their order."""
  y = np.array([1, 1, 1, 0, 0, 0, 0])
  s = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.5, 0.2])
  thresholds, p_miss, p_fa = V.operating_points(y, s)
  np.testing.assert_array_equal(thresholds, [0.1, 0.2, 0.5, 0.9, np.inf])
  np.testing.assert_allclose(p_miss, [0, 0, 0, 2 / 3, 1], rtol=0, atol=TOL)
  np.testing.assert_allclose(p_fa, [1, 0.75, 0.5, 0, 0], rtol=0, atol=TOL)
  value, threshold = V.eer(y, s)
  assert value == pytest.approx(2 / 7, abs=TOL) and threshold == 0.9
  assert V.eer(y, s, rule="nearest") == (0.25, 0.5)  # |d| = 1/2 at 0.5 beats 2/3 at 0.9
  value, threshold = V.min_dcf(y, s)  # 0.01 * 2/3 at 0.9, over 0.01
  assert value == pytest.approx(2 / 3, abs=TOL) and threshold == 0.9
  value, threshold = V.min_dcf(y, s, p_target=0.5)  # 0.5 * 1/2 at 0.5, over 0.5
  assert value == pytest.approx(0.5, abs=TOL) and threshold == 0.5
  for perm in (np.random.default_rng(i).permutation(7) for i in range(5)):
    assert V.eer(y[perm], s[perm]) == V.eer(y, s)
    assert V.min_dcf(y[perm], s[perm]) == V.min_dcf(y, s)


@pytest.mark.parametrize("metric", [V.eer, V.min_dcf, V.operating_points])
def test_refused_input(metric):
  with pytest.raises(ValueError, match="0 non-target"):
    metric([1, 1, 1], [0.1, 0.2, 0.3])
  with pytest.raises(ValueError, match="0 target"):
    metric([0, False, 0.0], [0.1, 0.2, 0.3])
  with pytest.raises(ValueError, match="NaN or infinite"):
    metric([1, 0, 1], [0.1, np.nan, 0.3])
  with pytest.raises(ValueError, match="NaN or infinite"):
    metric([1, 0, 1], [0.1, np.inf, 0.3])
  with pytest.raises(ValueError, match=r"binary labels.*\[-1, 2\]"):
    metric([1, 0, 2, -1], [0.1, 0.2, 0.3, 0.4])
  with pytest.raises(ValueError, match="differ in shape"):
    metric([1, 0], [0.1, 0.2, 0.3])


def test_bad_settings_are_refused():
  y, s = [1, 0], [0.5, 0.2]
  with pytest.raises(ValueError, match="rule must be"):
    V.eer(y, s, rule="sklearn")
  with pytest.raises(ValueError, match="0 < p_target < 1"):
    V.min_dcf(y, s, p_target=1.0)
  with pytest.raises(ValueError, match="positive costs"):
    V.min_dcf(y, s, c_fa=0)


# ------------------------------------------------------------------------ scoring, AS-norm


def embedding_set(rng, n=12, d=6):
  keys = [f"id1{i % 4:04d}/vid{i}/0000{i % 3}.wav" for i in range(n)]
  return keys, rng.standard_normal((n, d)) + 0.3


def test_cosine_scores_with_and_without_mean_subtraction():
  rng = np.random.default_rng(0)
  keys, X = embedding_set(rng)
  table = dict(zip(keys, X))
  enrol = [keys[i] for i in rng.integers(0, 12, 30)]
  test = [keys[i] for i in rng.integers(0, 12, 30)]
  train = rng.standard_normal((50, 6)) + 0.3
  mean = V.mean_embedding(train)
  np.testing.assert_allclose(mean, train.sum(0) / 50, rtol=0, atol=TOL)
  for m in (None, mean):
    want = []
    for e, t in zip(enrol, test):
      a, b = table[e] - (0 if m is None else m), table[t] - (0 if m is None else m)
      want.append(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))
    for emb in (table, (keys, X)):
      np.testing.assert_allclose(V.cosine_scores(enrol, test, emb, m, chunk=7), want, rtol=0, atol=TOL)
  unit = V.normalize_embeddings(X, mean)
  np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, rtol=0, atol=TOL)
  np.testing.assert_allclose(unit * np.linalg.norm(X - mean, axis=1, keepdims=True), X - mean, atol=TOL)
  assert abs(V.cosine_scores(enrol, test, table, mean)[0] - V.cosine_scores(enrol, test, table)[0]) > 1e-6


def test_cosine_scores_refuse_missing_keys_and_zero_vectors():
  keys = ["a", "b", "c"]
  X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  with pytest.raises(ValueError, match=r"1 test keys have no embedding \(first 'zz'\).*drop_missing"):
    V.cosine_scores(["a", "b"], ["c", "zz"], (keys, X))
  with pytest.raises(ValueError, match="zero or non-finite norm.*first 'c'"):
    V.cosine_scores(["a"], ["c"], (keys, X), mean=np.array([1.0, 1.0]))
  with pytest.raises(ValueError, match="one row per key"):
    V.cosine_scores(["a"], ["b"], (keys, X[:2]))


def ref_as_norm(scores, enrol, test, table, cohort, top_n, mean, ddof):
  """Each trial on its own: cosine against every cohort vector, sorted descending, top N."""
  def stats(key):
    v = table[key] - mean
    c = [np.dot(v, w - mean) / (np.linalg.norm(v) * np.linalg.norm(w - mean)) for w in cohort]
    top = sorted(c, reverse=True)[:top_n]
    return np.mean(top), np.std(top, ddof=ddof)
  out = []
  for s, e, t in zip(scores, enrol, test):
    (me, se), (mt, st) = stats(e), stats(t)
    out.append(0.5 * ((s - me) / se + (s - mt) / st))
  return np.array(out)


@pytest.mark.parametrize("top_n,ddof", [(5, 0), (1000, 0), (17, 1), (None, 0)])
def test_as_norm_matches_a_direct_loop(top_n, ddof):
  rng = np.random.default_rng(1)
  keys, X = embedding_set(rng, n=15, d=8)
  table = dict(zip(keys, X))
  cohort = rng.standard_normal((40, 8)) + 0.3
  cohort[7] = cohort[3]  # tied cohort scores
  mean = V.mean_embedding(cohort) * 0.5
  enrol = [keys[i] for i in rng.integers(0, 15, 25)]
  test = [keys[i] for i in rng.integers(0, 15, 25)]
  scores = V.cosine_scores(enrol, test, table, mean)
  if top_n == 1000:
    with pytest.raises(ValueError, match="top_n must be between 1 and the cohort size 40.*S-norm"):
      V.as_norm(scores, enrol, test, table, cohort, top_n, mean)
    return
  want = ref_as_norm(scores, enrol, test, table, cohort, top_n or 40, mean, ddof)
  got = V.as_norm(scores, enrol, test, (keys, X), cohort, top_n, mean, ddof=ddof, chunk=4)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
  cohort_table = {f"spk{i}": v for i, v in enumerate(cohort)}
  np.testing.assert_allclose(V.as_norm(scores, enrol, test, table, cohort_table, top_n, mean, ddof=ddof),
                             got, rtol=0, atol=1e-12)


def test_cohort_statistics_take_the_largest_scores():
  x = np.array([[1.0, 0.0]])
  angles = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
  cohort = np.stack([np.cos(angles), np.sin(angles)], 1) * 3.0
  mean, std = V.cohort_statistics(x, cohort, top_n=2)
  np.testing.assert_allclose(mean, [(1 + np.cos(0.5)) / 2], atol=TOL)
  np.testing.assert_allclose(std, [(1 - np.cos(0.5)) / 2], atol=TOL)


# --------------------------------------------------------------------------- trial lists, files


VOX = """1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav
0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav

1 id10273/0OCW1HUxZyg/00001.wav id10273/7i7kEq5wb5U/00002.wav
"""


def test_read_voxceleb_and_kaldi_trial_lists(tmp_path):
  path = tmp_path / "veri_test2.txt"
  path.write_text(VOX)
  trials = V.read_trials(str(path))
  np.testing.assert_array_equal(trials.label, [1, 0, 1])
  assert trials.label.dtype == np.int8
  assert list(trials.enrol) == ["id10270/x6uYqmx31kE/00001.wav"] * 2 + ["id10273/0OCW1HUxZyg/00001.wav"]
  assert trials.test[1] == "id10300/ize_eiCFEg0/00003.wav"
  kaldi = tmp_path / "vox1_O_cleaned.kaldi"
  kaldi.write_text("".join(f"{e} {t} {'target' if y else 'nontarget'}\n" for e, t, y in zip(*trials)))
  again = V.read_trials(str(kaldi), fmt="kaldi")
  for a, b in zip(again, trials):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("line", ["2 id1/a/1.wav id1/b/2.wav", "1 id1/a/1.wav", "1 a b c",
                                  "target id1/a/1.wav id1/b/2.wav"])
def test_malformed_trial_line_names_file_and_line(tmp_path, line):
  path = tmp_path / "list_test_hard2.txt"
  path.write_text(VOX + line + "\n")
  with pytest.raises(ValueError, match=r"list_test_hard2.txt, line 5: expected 'label enrol test'"):
    V.read_trials(str(path))
  with pytest.raises(ValueError, match="line 1: expected 'enrol test target|nontarget'"):
    V.read_trials(str(path), fmt="kaldi")
  (tmp_path / "empty.txt").write_text("\n")
  with pytest.raises(ValueError, match="holds no trials"):
    V.read_trials(str(tmp_path / "empty.txt"))


def test_drop_missing_returns_what_it_dropped(tmp_path):
  path = tmp_path / "veri_test2.txt"
  path.write_text(VOX)
  trials = V.read_trials(str(path))
  available = {"id10270/x6uYqmx31kE/00001.wav", "id10270/8jEAjG6SegY/00008.wav",
               "id10273/0OCW1HUxZyg/00001.wav", "id10273/7i7kEq5wb5U/00002.wav"}
  for avail in (available, sorted(available), dict.fromkeys(available)):
    kept, dropped = V.drop_missing(trials, avail)
    np.testing.assert_array_equal(kept.label, [1, 1])
    assert list(kept.test) == ["id10270/8jEAjG6SegY/00008.wav", "id10273/7i7kEq5wb5U/00002.wav"]
    assert list(dropped.test) == ["id10300/ize_eiCFEg0/00003.wav"] and list(dropped.label) == [0]
  kept, dropped = V.drop_missing(trials, set())
  assert len(kept.label) == 0 and len(dropped.label) == 3


def test_score_file_round_trip(tmp_path):
  rng = np.random.default_rng(2)
  enrol = [f"id1{i:04d}/v/00001.wav" for i in range(20)]
  test = [f"id1{i % 3:04d}/w/00002.wav" for i in range(20)]
  labels = rng.integers(0, 2, 20)
  scores = rng.standard_normal(20) / 3
  path = tmp_path / "vox1_O.score"
  V.write_scores(str(path), enrol, test, scores, labels)
  trials, got = V.read_scores(str(path))
  np.testing.assert_array_equal(got, scores)  # exact: repr reads back equal
  np.testing.assert_array_equal(trials.label, labels)
  assert list(trials.enrol) == enrol and list(trials.test) == test
  V.write_scores(str(path), enrol, test, scores, labels, digits=5)
  first = path.read_text().splitlines()[0].split()
  assert first == [enrol[0], test[0], f"{scores[0]:.5f}", "target" if labels[0] else "nontarget"]
  np.testing.assert_allclose(V.read_scores(str(path))[1], scores, rtol=0, atol=5e-6)
  with open(path, "a") as f:  # wespeaker's score_norm.py may append columns: read the first four
    f.write("a b 0.5 target 1.0 2.0 0.1 0.2\n")
  trials, got = V.read_scores(str(path))
  assert got[-1] == 0.5 and trials.label[-1] == 1 and len(got) == 21


@pytest.mark.parametrize("line", ["a b 0.5", "a b x target", "a b 0.5 1"])
def test_malformed_score_line_names_file_and_line(tmp_path, line):
  path = tmp_path / "vox1_E.score"
  path.write_text(f"a b 0.25 target\n{line}\n")
  with pytest.raises(ValueError, match=r"vox1_E.score, line 2: expected 'enrol test score target\|"):
    V.read_scores(str(path))


def test_write_scores_refuses_what_it_cannot_write(tmp_path):
  path = str(tmp_path / "s.score")
  with pytest.raises(ValueError, match="whitespace"):
    V.write_scores(path, ["a b"], ["c"], [0.1], [1])
  with pytest.raises(ValueError, match="1 .target. or 0"):
    V.write_scores(path, ["a"], ["c"], [0.1], [2])
  with pytest.raises(ValueError, match="equal 1-D shapes"):
    V.write_scores(path, ["a", "b"], ["c"], [0.1], [1])
