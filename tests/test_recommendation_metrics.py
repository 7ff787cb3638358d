"""mirjax.evaluation.recommendation against scikit-learn and a loop written from the
definitions, to 1e-12, with tied scores, excluded items and users without relevant items;
blocked evaluation equals unblocked exactly."""
import numpy as np
import pytest
from scipy import sparse
from sklearn import metrics as skm

from mirjax.evaluation import recommendation as rec
from mirjax.evaluation.metrics import UndefinedMetricWarning

TOL = 1e-12


def ranking_data(seed, n_users=40, n_items=30, levels=4):
  """Scores on `levels` values (many ties; levels=None: continuous) and relevance of varied
  density; user 0 has no relevant item, user 1 only relevant items."""
  rng = np.random.default_rng(seed)
  relevant = rng.random((n_users, n_items)) < rng.uniform(0.02, 0.5, (n_users, 1))
  relevant[0], relevant[1] = False, True
  noise = rng.random((n_users, n_items))
  scores = noise + relevant if levels is None else np.floor((noise + 0.5 * relevant) * levels)
  return scores, relevant


def ap_at_reference(s, r, k):
  """AP@k by its definition: (1 / min(|R|, k)) sum_{i<=k} Precision@i rel(i), with the
  ranking np.argsort(-s, kind="stable"), i.e. ties by increasing item index, as the module."""
  if not r.any():
    return np.nan
  hits, total = 0, 0.0
  for i, item in enumerate(np.argsort(-s, kind="stable")[:k], start=1):
    if r[item]:
      hits += 1
      total += hits / i  # Precision@i, counted where rel(i) = 1
  return total / min(r.sum(), k)


def auc_reference(s, r):
  return skm.roc_auc_score(r, s) if 0 < r.sum() < r.size else np.nan


@pytest.mark.parametrize("seed", range(4))
def test_user_auc_matches_sklearn_with_ties(seed):
  scores, relevant = ranking_data(seed)
  assert len(np.unique(scores)) <= 6  # ties in every row
  auc = rec.user_auc(scores, relevant)
  ref = np.array([auc_reference(s, r) for s, r in zip(scores, relevant)])
  assert np.isnan(auc[:2]).all()
  np.testing.assert_array_equal(np.isnan(auc), np.isnan(ref))
  np.testing.assert_allclose(auc, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", range(3))
def test_ap_at_full_depth_without_ties_is_sklearns_average_precision(seed):
  # Without ties each threshold adds one item and recall grows by 1/|R| exactly at the
  # relevant ones, so sklearn's sum_n (R_n - R_{n-1}) P_n = (1/|R|) sum_{i: rel(i)} P@i,
  # which is AP@k once k >= n_items (then min(|R|, k) = |R|).
  scores, relevant = ranking_data(seed, levels=None)
  assert all(len(np.unique(s)) == s.size for s in scores)
  ref = np.array([skm.average_precision_score(r, s) if r.any() else np.nan
                  for s, r in zip(scores, relevant)])
  for k in (scores.shape[1], scores.shape[1] + 7, 500):
    np.testing.assert_allclose(rec.average_precision_at(scores, relevant, k=k), ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 2, 5, 13])
def test_ap_at_k_with_ties_matches_the_definition(seed, k):
  scores, relevant = ranking_data(seed)
  ref = np.array([ap_at_reference(s, r, k) for s, r in zip(scores, relevant)])
  np.testing.assert_allclose(rec.average_precision_at(scores, relevant, k=k), ref, rtol=0, atol=TOL)


def test_hand_examples():
  ranked = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])  # item i at rank i + 1
  hits_1_and_3 = np.array([[1, 0, 1, 0, 0]])
  assert rec.average_precision_at(ranked, hits_1_and_3, k=2)[0] == 0.5  # (1/2)(1/1)
  assert abs(rec.average_precision_at(ranked, hits_1_and_3, k=5)[0] - 5 / 6) < TOL  # (1 + 2/3)/2
  assert rec.average_precision_at(ranked, hits_1_and_3, k=1)[0] == 1.0  # (1/1)(1/1)
  assert abs(rec.average_precision_at(ranked, [[0, 1, 1, 1, 0]], k=2)[0] - 0.25) < TOL  # (1/2)/2
  tied = np.array([[1.0, 1.0, 0.0]])
  assert rec.average_precision_at(tied, [[0, 1, 0]], k=3)[0] == 0.5  # the tie goes to item 0
  assert rec.average_precision_at(tied, [[1, 0, 0]], k=3)[0] == 1.0
  assert rec.average_precision_at(tied, [[0, 1, 0]], k=1)[0] == 0.0
  # AUC: 3 pairs won and one tied of 2 x 2.
  assert rec.user_auc([[0.9, 0.5, 0.5, 0.1]], [[1, 1, 0, 0]])[0] == 0.875


def test_exclude_drops_items_from_ranking_and_relevance():
  scores, relevant, history = [[3.0, 2.0, 1.0]], [[0, 1, 0]], [[1, 0, 0]]
  assert rec.average_precision_at(scores, relevant)[0] == 0.5
  assert rec.average_precision_at(scores, relevant, exclude=history)[0] == 1.0
  assert rec.user_auc(scores, relevant)[0] == 0.5
  assert rec.user_auc(scores, relevant, exclude=history)[0] == 1.0
  assert np.isnan(rec.user_auc(scores, relevant, exclude=[[1, 0, 1]])[0])  # one item left
  assert np.isnan(rec.average_precision_at(scores, relevant, exclude=[[0, 1, 0]])[0])  # R emptied


@pytest.mark.parametrize("seed", range(3))
def test_exclude_equals_scoring_each_user_on_the_kept_items(seed):
  scores, relevant = ranking_data(seed)
  history = np.random.default_rng(seed + 100).random(scores.shape) < 0.3
  for k in (3, 500):
    ap = rec.average_precision_at(scores, relevant, k=k, exclude=history)
    ref = [ap_at_reference(s[~x], r[~x], k) for s, r, x in zip(scores, relevant, history)]
    np.testing.assert_allclose(ap, ref, rtol=0, atol=TOL)
  auc = rec.user_auc(scores, relevant, exclude=sparse.csr_array(history))
  ref = [auc_reference(s[~x], r[~x]) for s, r, x in zip(scores, relevant, history)]
  np.testing.assert_allclose(auc, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", range(2))
def test_blocked_evaluation_equals_unblocked(seed):
  rng = np.random.default_rng(seed)
  users = rng.integers(-2, 3, (37, 4)).astype(np.float32)  # small integers: exact products, many ties
  items = rng.integers(-2, 3, (23, 4)).astype(np.float32)
  relevant = rng.random((37, 23)) < 0.2
  history = rng.random((37, 23)) < 0.2
  scores = users.astype(np.float64) @ items.T.astype(np.float64)
  whole = dict(block=37, k=5, exclude=history)
  ref_ap = rec.average_precision_at(scores, relevant, **whole)
  ref_auc = rec.user_auc(scores, relevant, exclude=history, block=37)
  ref = rec.evaluate_ranking(scores, relevant, **whole)
  assert ref["users"] == np.sum(~np.isnan(ref_ap)) and ref["n_users"] == 37
  assert ref["map@5"] == np.nanmean(ref_ap) and ref["auc"] == np.nanmean(ref_auc)
  for block in (1, 6, 36, None):
    for rel in (relevant, sparse.csr_array(relevant), sparse.csr_matrix(relevant.astype(np.int8))):
      part = dict(block=block, k=5, exclude=sparse.csr_array(history))
      np.testing.assert_array_equal(rec.average_precision_at(scores, rel, **part), ref_ap)
      np.testing.assert_array_equal(rec.average_precision_at(lambda rows: scores[rows], rel, **part), ref_ap)
      np.testing.assert_array_equal(rec.user_auc(scores, rel, exclude=history, block=block), ref_auc)
      assert rec.evaluate_factors(users, items, rel, **part) == ref
      assert rec.evaluate_ranking(lambda rows: users[rows] @ items.T, rel, **part) == ref


def test_default_block_bounds_the_scores_held_at_once(monkeypatch):
  monkeypatch.setattr(rec, "BLOCK_CELLS", 100)
  scores, relevant = ranking_data(0, n_users=25, n_items=30)
  shapes = []

  def blockwise(rows):
    shapes.append(scores[rows].shape)
    return scores[rows]
  whole = rec.evaluate_ranking(scores, relevant, k=4, block=25)
  assert rec.evaluate_ranking(blockwise, relevant, k=4) == whole
  assert shapes == [(3, 30)] * 8 + [(1, 30)]  # 100 // 30 = 3 users per block


def test_popularity_baseline_hand_example():
  counts = np.array([5, 0, 9, 5])  # ranking for everyone: item 2, 0, 3 (tie: index), 1
  scores = rec.popularity_scores(counts, n_users=2)
  assert scores.shape == (2, 4) and scores.strides[0] == 0  # one row, broadcast
  relevant = np.array([[0, 0, 0, 1], [1, 1, 0, 0]])
  ap = rec.average_precision_at(scores, relevant)
  np.testing.assert_allclose(ap, [1 / 3, (1 / 2 + 2 / 4) / 2], rtol=0, atol=TOL)
  result = rec.evaluate_ranking(scores, relevant)
  assert abs(result["map@500"] - 5 / 12) < TOL
  # AUC, ties one half: user 0's item 3 (5) ties item 0, beats 1, loses to 2: 1.5 / 3; user 1's
  # items 0 (5) and 1 (0) against 2 (9) and 3 (5): only the tie 0-3 counts, 0.5 / 4.
  assert abs(result["auc"] - (1.5 / 3 + 0.5 / 4) / 2) < TOL
  with pytest.raises(ValueError, match="1-D"):
    rec.popularity_scores(np.ones((2, 2)), 3)


def test_users_without_relevant_items_are_skipped_and_counted():
  scores, relevant = ranking_data(1, n_users=12)
  relevant[5] = False  # users 0 and 5 have no relevant item; user 1 has no non-relevant one
  ap = rec.average_precision_at(scores, relevant, k=10)
  auc = rec.user_auc(scores, relevant)
  np.testing.assert_array_equal(np.flatnonzero(np.isnan(ap)), [0, 5])
  np.testing.assert_array_equal(np.flatnonzero(np.isnan(auc)), [0, 1, 5])
  with pytest.warns(UndefinedMetricWarning, match="map@10 left out 2 of 12 users"):
    assert rec.mean_average_precision_at(scores, relevant, k=10) == np.nanmean(ap)
  with pytest.warns(UndefinedMetricWarning, match="auc left out 3 of 12 users"):
    assert rec.mean_user_auc(scores, relevant) == np.nanmean(auc)
  result = rec.evaluate_ranking(scores, relevant, k=10)
  assert (result["users"], result["auc_users"], result["n_users"]) == (10, 9, 12)
  nobody = rec.evaluate_ranking(scores, np.zeros_like(relevant), k=10)
  assert np.isnan(nobody["map@10"]) and np.isnan(nobody["auc"]) and nobody["users"] == 0


def test_bad_input_raises_clearly():
  scores, relevant = np.zeros((3, 5)), np.zeros((3, 5), bool)
  with pytest.raises(ValueError, match=r"relevant \(3, 4\) and scores \(3, 5\) differ in shape"):
    rec.average_precision_at(scores, relevant[:, :4])
  with pytest.raises(ValueError, match=r"exclude \(2, 5\) and scores \(3, 5\) differ in shape"):
    rec.user_auc(scores, relevant, exclude=sparse.csr_array(relevant[:2]))
  with pytest.raises(ValueError, match=r"scores of users 0:3 have shape \(3, 4\), expected \(3, 5\)"):
    rec.evaluate_ranking(lambda rows: scores[rows, :4], relevant)
  with pytest.raises(ValueError, match="same number of factors"):
    rec.evaluate_factors(np.zeros((3, 2)), np.zeros((5, 3)), relevant)
  with pytest.raises(ValueError, match=r"relevant \(3, 5\) must be \(n_users, n_items\) = \(3, 4\)"):
    rec.evaluate_factors(np.zeros((3, 2)), np.zeros((4, 2)), relevant)
  with pytest.raises(ValueError, match="must be 2-D"):
    rec.user_auc(np.zeros(5), np.zeros(5))
  with pytest.raises(ValueError, match="binary labels"):
    rec.user_auc(scores, np.full((3, 5), 2))
  with pytest.raises(ValueError, match="binary labels"):
    rec.user_auc(scores, sparse.csr_array(np.full((3, 5), 3)))
  with pytest.raises(ValueError, match="NaN or infinite"):
    rec.user_auc(np.full((3, 5), np.nan), relevant)
  with pytest.raises(ValueError, match="positive integer"):
    rec.average_precision_at(scores, relevant, k=0)
  with pytest.raises(ValueError, match="positive number of users"):
    rec.evaluate_ranking(scores, relevant, block=0)
