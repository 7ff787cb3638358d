"""Ranking metrics of recommendation: truncated mAP (mAP@500) and per-user AUC.

Content-based music recommendation is scored as in van den Oord, Dieleman and Schrauwen,
"Deep content-based music recommendation" (NIPS 2013): for each held-out user, the
candidate songs are ranked by a score (the dot product of the user's latent factors with
the song's predicted factors), and the rankings are compared with the songs the user
played. With R the user's relevant set and rel(i) = 1 when the song at rank i is in R,
the truncated average precision of the Million Song Dataset Challenge (McFee et al.,
"The Million Song Dataset Challenge", WWW 2012 companion) is

  AP@tau = 1 / min(|R|, tau) * sum_{i=1..tau} Precision@i * rel(i),
  Precision@i = (1 / i) * sum_{j=1..i} rel(j),

and mAP@tau its mean over users. The AUC is each user's ROC-AUC of the scores against
relevance, the Mann-Whitney U over |R| * (n_items - |R|) with average ranks for tied
scores (scikit-learn's ``roc_auc_score``), averaged over users.

Conventions:

- Ties in the ranking (AP@tau) are broken by increasing item index, the order of
  ``np.argsort(-scores, kind="stable")``; the AUC counts a tied pair one half.
- A user with no relevant item gets AP NaN, and a user whose candidates are all relevant or
  all not gets AUC NaN; the ``mean_*`` functions leave those users out and warn how many
  (`UndefinedMetricWarning`); `evaluate_ranking` returns the counts it averaged over.
- ``exclude`` (optional, same shape) drops items from a user's candidates, e.g. the songs in
  their training history: an excluded item is neither ranked nor relevant.

Scores come as an array (n_users, n_items) (a ``np.memmap`` or a broadcast view works) or
as a callable ``scores(rows: slice) -> (rows, n_items)`` array; relevance and exclusion as
dense binary arrays or scipy.sparse matrices (every stored value 0 or 1). Users are
processed ``block`` rows at a time (default: 2^22 scores per block), so memory does not grow
with the number of users.
"""
import warnings
from typing import Callable

import numpy as np
from scipy import sparse

from mirjax.evaluation.metrics import _check_labels
from mirjax.evaluation.metrics import _check_scores
from mirjax.evaluation.metrics import UndefinedMetricWarning

Scores = np.ndarray | Callable[[slice], np.ndarray]
BLOCK_CELLS = 2 ** 22  # default block: 4 Mi scores, 32 MiB per (block, n_items) float64 array


def popularity_scores(item_counts, n_users: int) -> np.ndarray:
  """The popularity baseline: every user's score of each item is its training popularity.

  Parameters
  ----------
  item_counts : array (n_items,), the items' popularity in the training set, e.g. their
    listener counts ``np.asarray((train > 0).sum(axis=0)).ravel()`` or their play counts
  n_users : int, the number of users to score

  Returns
  -------
  read-only float64 array (n_users, n_items), a broadcast view (no per-user memory); items
  of equal popularity (all cold-start songs: 0) are ranked by item index
  """
  counts = np.asarray(item_counts, np.float64)
  if counts.ndim != 1:
    raise ValueError(f"item_counts must be 1-D (n_items,), got shape {counts.shape}")
  _check_scores(counts, "item_counts")
  return np.broadcast_to(counts, (int(n_users), counts.size))


def _binary_matrix(m, name, shape):
  """``m`` as CSR or dense array of ``shape`` with 0/1 labels, or a clear ValueError."""
  m = sparse.csr_array(m) if sparse.issparse(m) else np.asarray(m)
  if m.ndim != 2 or m.shape != shape:
    raise ValueError(f"{name} {m.shape} and scores {shape} differ in shape: both must be (n_users, n_items)")
  _check_labels(m.data if sparse.issparse(m) else m, name)
  return m


def _rows(m, rows):
  """Dense bool rows of a CSR or dense matrix."""
  return (m[rows].toarray() if sparse.issparse(m) else np.asarray(m[rows])).astype(bool)


def _blocks(scores: Scores, relevant, exclude, block):
  """Yield (s, rel, n_excluded) per block of users: float64 scores with excluded items at
  -inf (below every finite score, so they rank last), and relevance with them removed."""
  relevant = sparse.csr_array(relevant) if sparse.issparse(relevant) else np.asarray(relevant)
  shape = tuple(relevant.shape if callable(scores) else np.shape(scores))
  if len(shape) != 2:
    what = "relevant (scores are a callable)" if callable(scores) else "scores"
    raise ValueError(f"{what} must be 2-D (n_users, n_items), got shape {shape}")
  relevant = _binary_matrix(relevant, "relevant", shape)
  exclude = None if exclude is None else _binary_matrix(exclude, "exclude", shape)
  n_users, n_items = shape
  block = max(1, BLOCK_CELLS // max(n_items, 1)) if block is None else int(block)
  if block < 1:
    raise ValueError(f"block must be a positive number of users, got {block}")
  for lo in range(0, n_users, block):
    rows = slice(lo, min(lo + block, n_users))
    s = np.array(scores(rows) if callable(scores) else scores[rows], np.float64)  # a copy we may edit
    if s.shape != (rows.stop - lo, n_items):
      raise ValueError(f"scores of users {lo}:{rows.stop} have shape {s.shape}, expected "
                       f"{(rows.stop - lo, n_items)} (relevant is {shape})")
    _check_scores(s, "scores")
    rel = _rows(relevant, rows)
    if exclude is None:
      yield s, rel, np.zeros(len(s), np.int64)
    else:
      drop = _rows(exclude, rows)
      s[drop] = -np.inf
      yield s, rel & ~drop, drop.sum(axis=1)


def _top_k(s, k):
  """Indices (b, k) of each row's k largest scores, by decreasing score, ties by index.

  Selects in O(n_items) per row (partition at the k-th score, then the lowest-index ties
  fill the remaining places), so only k items per row are sorted."""
  neg = -s
  if k < s.shape[1]:
    kth = np.partition(neg, k - 1, axis=1)[:, k - 1:k]
    above, tied = neg < kth, neg == kth
    need = k - above.sum(axis=1, keepdims=True)
    over = np.flatnonzero(tied.sum(axis=1) > need[:, 0])  # rows with more ties than places
    if over.size:  # the cumulative sum is slow: only where some tied items are left out
      tied[over] &= np.cumsum(tied[over], axis=1) <= need[over]
    idx = np.nonzero(above | tied)[1].reshape(len(s), k)  # row-major: increasing index per row
  else:
    idx = np.broadcast_to(np.arange(s.shape[1]), s.shape)
  order = np.argsort(np.take_along_axis(neg, idx, axis=1), axis=1, kind="stable")
  return np.take_along_axis(idx, order, axis=1)


def _ap_block(s, rel, k):
  hits = np.take_along_axis(rel, _top_k(s, min(k, s.shape[1])), axis=1)
  precision = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
  n_rel = rel.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(n_rel > 0, (precision * hits).sum(axis=1) / np.minimum(n_rel, k), np.nan)


def _auc_block(s, rel, n_excluded):
  """Per-row AUC = (sum of the positives' average ranks - n+ (n+ + 1) / 2) / (n+ n-)."""
  ordered = np.sort(s, axis=1)
  rank_sum = np.empty(len(s))
  for i, (row, hits) in enumerate(zip(ordered, rel)):
    p = s[i, hits]
    # 1-based average rank: (#below + 1 + #below-or-tied) / 2
    rank_sum[i] = np.sum(np.searchsorted(row, p, "left") + np.searchsorted(row, p, "right") + 1) / 2.0
  n_pos = rel.sum(axis=1)
  n_neg = s.shape[1] - n_excluded - n_pos
  # Excluded items tie at -inf below all others: each kept item's rank is n_excluded higher.
  rank_sum -= n_pos * n_excluded
  with np.errstate(invalid="ignore", divide="ignore"):
    auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
  return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _check_k(k):
  if int(k) != k or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}")
  return int(k)


def average_precision_at(scores: Scores, relevant, k: int = 500, exclude=None,
                         block: int | None = None) -> np.ndarray:
  """Per-user truncated average precision AP@k (module docstring), ties by item index.

  Parameters
  ----------
  scores : array (n_users, n_items) of finite scores, higher = recommended first, or a
    callable ``scores(rows: slice)`` returning those users' rows
  relevant : binary array or scipy.sparse matrix (n_users, n_items), 1 = relevant
  k : int, the cut-off tau (default 500); k >= n_items ranks every item
  exclude : optional binary array or sparse matrix (n_users, n_items) of items to drop
  block : users per block (default: ``BLOCK_CELLS // n_items``)

  Returns
  -------
  float64 array (n_users,) in [0, 1]; NaN for a user with no relevant item
  """
  k = _check_k(k)
  return np.concatenate([_ap_block(s, rel, k) for s, rel, _ in _blocks(scores, relevant, exclude, block)])


def user_auc(scores: Scores, relevant, exclude=None, block: int | None = None) -> np.ndarray:
  """Per-user ROC-AUC of the scores against relevance, tied pairs counting one half.

  Parameters: as `average_precision_at`. Returns float64 (n_users,) in [0, 1]; NaN for a
  user whose (not excluded) items are all relevant or all not.
  """
  return np.concatenate([_auc_block(*b) for b in _blocks(scores, relevant, exclude, block)])


def _mean_over_users(values, metric):
  """Mean over the users where ``values`` is not NaN, warning how many were left out."""
  skipped = np.isnan(values)
  if skipped.any():
    warnings.warn(f"{metric} left out {int(skipped.sum())} of {skipped.size} users for whom it is "
                  f"undefined", UndefinedMetricWarning, stacklevel=3)
  return float(values[~skipped].mean()) if (~skipped).any() else float("nan")


def mean_average_precision_at(scores: Scores, relevant, k: int = 500, exclude=None,
                              block: int | None = None) -> float:
  """mAP@k: the mean of `average_precision_at` over the users with a relevant item.

  Warns `UndefinedMetricWarning` with the count of users left out; NaN when none is left.
  """
  return _mean_over_users(average_precision_at(scores, relevant, k, exclude, block), f"map@{k}")


def mean_user_auc(scores: Scores, relevant, exclude=None, block: int | None = None) -> float:
  """The mean of `user_auc` over the users where it is defined; warns as
  `mean_average_precision_at`."""
  return _mean_over_users(user_auc(scores, relevant, exclude, block), "auc")


def evaluate_ranking(scores: Scores, relevant, k: int = 500, exclude=None,
                     block: int | None = None) -> dict:
  """mAP@k and mean AUC in one pass over the users (parameters: `average_precision_at`).

  Returns
  -------
  dict: ``f"map@{k}"`` and ``"auc"`` (float, NaN when no user is defined), ``"users"`` (users
  with a relevant item: those mAP averages over), ``"auc_users"`` (users with relevant and
  non-relevant items: those the AUC averages over) and ``"n_users"`` (all users)
  """
  k = _check_k(k)
  ap, auc = [], []
  for s, rel, n_excluded in _blocks(scores, relevant, exclude, block):
    ap.append(_ap_block(s, rel, k))
    auc.append(_auc_block(s, rel, n_excluded))
  ap, auc = np.concatenate(ap), np.concatenate(auc)
  ap_ok, auc_ok = ~np.isnan(ap), ~np.isnan(auc)
  return {f"map@{k}": float(ap[ap_ok].mean()) if ap_ok.any() else float("nan"),
          "auc": float(auc[auc_ok].mean()) if auc_ok.any() else float("nan"),
          "users": int(ap_ok.sum()), "auc_users": int(auc_ok.sum()), "n_users": ap.size}


def evaluate_factors(user_factors, item_factors, relevant, k: int = 500, exclude=None,
                     block: int | None = None) -> dict:
  """`evaluate_ranking` of the scores ``user_factors @ item_factors.T``, made block by block.

  Parameters
  ----------
  user_factors : array (n_users, d), e.g. the held-out users' WMF factors
  item_factors : array (n_items, d), e.g. the factors a network predicts from the songs'
    audio; the product is taken in float64. BLAS may round a row differently for another
    ``block``, so near-ties of non-integer factors can rank differently between block sizes
  relevant, k, exclude, block : as `evaluate_ranking`

  Returns: as `evaluate_ranking`.
  """
  users = np.asarray(user_factors, np.float64)
  items = np.asarray(item_factors, np.float64)
  if users.ndim != 2 or items.ndim != 2 or users.shape[1] != items.shape[1]:
    raise ValueError(f"user_factors {users.shape} and item_factors {items.shape} must be 2-D with "
                     f"the same number of factors")
  if (users.shape[0], items.shape[0]) != np.shape(relevant):
    raise ValueError(f"relevant {np.shape(relevant)} must be (n_users, n_items) = "
                     f"{(users.shape[0], items.shape[0])}")
  return evaluate_ranking(lambda rows: users[rows] @ items.T, relevant, k, exclude, block)
