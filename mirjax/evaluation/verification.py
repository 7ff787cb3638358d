"""Speaker-verification trials scored as wespeaker and SpeechBrain score them.

Trial lists, cosine scoring, AS-norm, EER, minDCF and score files, on host NumPy arrays in
float64. The definitions and the toolkit code they were checked against:

- Cosine scoring: wespeaker ``wespeaker/bin/score.py`` (``--mean_vec``: subtract the mean
  of a training set's embeddings, then cosine).
- AS-norm: wespeaker ``wespeaker/bin/score_norm.py`` (``get_mean_std``): top-N of each
  side's cohort scores, population std (ddof 0).
- Operating points: one per distinct score plus +inf; a trial is accepted as target when
  its score >= threshold, so tied trials switch together, and both ends (accept all,
  reject all) are points. wespeaker's ``compute_pmiss_pfa_rbst`` takes one point per trial
  in sort order (ties split in an arbitrary order) and leaves out accept-all.
  Without ties the two give the same EER and, unless C_fa (1 - p_target) < C_miss
  p_target, the same minDCF.
- EER: by default NIST's linear interpolation where P_miss - P_fa changes sign (wespeaker
  ``compute_eer``, from NIST's SRE16 scoring script; the same crossing as on scikit-learn's
  ``roc_curve``). ``rule="nearest"`` is SpeechBrain's ``EER``.
- minDCF: NIST SRE's normalised cost (wespeaker ``compute_c_norm``). SpeechBrain's
  ``minDCF`` returns the cost without the normalisation (``normalize=False``).

Labels are 1 = target, 0 = non-target. wespeaker computes its metrics from score files it
wrote with 5 decimals; to reproduce one of its numbers, round the scores the same way
(``np.round(scores, 5)``, or `write_scores` with ``digits=5`` and `read_scores`).
"""
from typing import NamedTuple

import numpy as np

from mirjax.evaluation.metrics import _binary


class Trials(NamedTuple):
  """A trial list: utterance keys (n,) of each side, and labels (n,) int8, 1 = target."""
  enrol: np.ndarray
  test: np.ndarray
  label: np.ndarray


def _trials(enrol, test, label):
  return Trials(np.asarray(enrol, dtype=str), np.asarray(test, dtype=str), np.asarray(label, np.int8))


# ----------------------------------------------------------------------------------- files

_FORMATS = {
    "voxceleb": "'label enrol test' (label 1 = target, 0 = non-target)",
    "kaldi": "'enrol test target|nontarget'",
}


def read_trials(path, fmt="voxceleb"):
  """Trials of a trial-list file.

  Parameters
  ----------
  path : str, the file
  fmt : "voxceleb" for the published VoxCeleb lists (``veri_test2.txt``,
    ``list_test_all2.txt``, ``list_test_hard2.txt``: ``label enrol test`` per line, keys like
    ``id10270/x6uYqmx31kE/00001.wav``), or "kaldi" for ``enrol test target|nontarget``
    (wespeaker's ``*.kaldi`` trials). Blank lines are skipped.

  Returns
  -------
  `Trials`; raises ValueError naming the file and line of a malformed line
  """
  if fmt not in _FORMATS:
    raise ValueError(f"fmt must be one of {sorted(_FORMATS)}, got {fmt!r}")
  enrol, test, label = [], [], []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      if fmt == "voxceleb":
        ok = len(fields) == 3 and fields[0] in ("0", "1")
        lab, e, t = (fields + [None] * 3)[:3]
        lab = lab == "1"
      else:
        ok = len(fields) == 3 and fields[2] in ("target", "nontarget")
        e, t, lab = (fields + [None] * 3)[:3]
        lab = lab == "target"
      if not ok:
        raise ValueError(f"{path}, line {number}: expected {_FORMATS[fmt]}, got {line.rstrip()!r}")
      enrol.append(e)
      test.append(t)
      label.append(lab)
  if not label:
    raise ValueError(f"{path} holds no trials")
  return _trials(enrol, test, label)


def write_scores(path, enrol, test, scores, labels, digits=None):
  """Write a Kaldi / wespeaker score file: one ``enrol test score target|nontarget`` line
  per trial.

  Parameters
  ----------
  path : str
  enrol, test : (n,) utterance keys (no whitespace)
  scores : (n,) floats
  labels : (n,) 1 = target, 0 = non-target
  digits : decimals of the score (wespeaker writes 5), or None to write each float
    exactly (shortest repr that reads back equal)
  """
  enrol, test = np.asarray(enrol, dtype=str), np.asarray(test, dtype=str)
  scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
  if not enrol.shape == test.shape == scores.shape == labels.shape or enrol.ndim != 1:
    raise ValueError(f"enrol {enrol.shape}, test {test.shape}, scores {scores.shape} and labels "
                     f"{labels.shape} must be equal 1-D shapes")
  if not np.isin(labels, (0, 1)).all():
    raise ValueError("labels must be 1 (target) or 0 (non-target)")
  for side, keys in (("enrol", enrol), ("test", test)):
    bad = [k for k in keys if not k or len(k.split()) != 1]
    if bad:
      raise ValueError(f"{len(bad)} {side} keys are empty or hold whitespace (first {bad[0]!r}); "
                       "a score file splits its lines on whitespace")
  with open(path, "w", encoding="utf-8") as f:
    for e, t, s, y in zip(enrol, test, scores.tolist(), labels.tolist()):
      text = repr(s) if digits is None else f"{s:.{digits}f}"
      f.write(f"{e} {t} {text} {'target' if y else 'nontarget'}\n")


def read_scores(path):
  """Trials and scores of a Kaldi / wespeaker score file.

  Reads the first four fields of each line, ``enrol test score target|nontarget``, as
  wespeaker's ``compute_metrics.py`` does (its ``score_norm.py`` may append more).

  Returns
  -------
  (`Trials`, scores (n,) float64); raises ValueError naming the file and line of a
  malformed line
  """
  enrol, test, label, scores = [], [], [], []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      try:
        if len(fields) < 4 or fields[3] not in ("target", "nontarget"):
          raise ValueError
        score = float(fields[2])
      except ValueError:
        raise ValueError(f"{path}, line {number}: expected 'enrol test score target|nontarget', "
                         f"got {line.rstrip()!r}") from None
      enrol.append(fields[0])
      test.append(fields[1])
      scores.append(score)
      label.append(fields[3] == "target")
  if not label:
    raise ValueError(f"{path} holds no scored trials")
  return _trials(enrol, test, label), np.asarray(scores, np.float64)


def drop_missing(trials, available):
  """Split trials into those whose enrol and test keys are both ``available`` and the rest.

  Parameters
  ----------
  trials : `Trials`
  available : container of keys (a set, a dict of embeddings, a list)

  Returns
  -------
  (kept, dropped), both `Trials`. Report ``len(dropped.label)`` and the first few dropped
  trials: scores over fewer trials are not the published list's numbers.
  """
  if not isinstance(available, (set, frozenset, dict)):
    available = set(available)
  keep = np.array([e in available and t in available for e, t in zip(trials.enrol, trials.test)], bool)
  keep = keep.reshape(len(trials.label))
  return Trials(*(a[keep] for a in trials)), Trials(*(a[~keep] for a in trials))


# ------------------------------------------------------------------------- embeddings


def _table(embeddings, what="embeddings"):
  """(key -> row index, float64 matrix) of a dict key -> vector or a (keys, matrix) pair."""
  if isinstance(embeddings, dict):
    keys = list(embeddings)
    if not keys:
      raise ValueError(f"{what} is empty")
    matrix = np.stack([np.asarray(embeddings[k], np.float64).ravel() for k in keys])
  else:
    keys, matrix = embeddings
    keys, matrix = list(keys), np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != len(keys):
      raise ValueError(f"{what}: matrix {matrix.shape} must be 2-D with one row per key ({len(keys)} keys)")
  index = {k: i for i, k in enumerate(keys)}
  if len(index) != len(keys):
    raise ValueError(f"{what}: {len(keys) - len(index)} keys appear more than once")
  return index, matrix


def _rows(index, keys, side):
  rows = np.array([index.get(k, -1) for k in keys], np.int64).reshape(len(keys))
  missing = np.flatnonzero(rows < 0)
  if missing.size:
    first = ", ".join(repr(str(keys[i])) for i in missing[:3])
    raise ValueError(f"{missing.size} {side} keys have no embedding (first {first}); drop those trials "
                     "with drop_missing(trials, embeddings) and report how many")
  return rows


def mean_embedding(embeddings):
  """Mean vector (d,) of a dict key -> vector, a (keys, matrix) pair or a matrix (n, d):
  what wespeaker saves as ``mean_vec.npy`` from the training set's embeddings."""
  if isinstance(embeddings, (dict, tuple)):
    embeddings = _table(embeddings)[1]
  return np.asarray(embeddings, np.float64).mean(axis=0)


def normalize_embeddings(x, mean=None, names=None):
  """Rows of ``x`` (n, d) less ``mean`` (d,) if given, scaled to unit L2 norm.

  Raises ValueError for a row of zero norm (its cosine is undefined), naming it by
  ``names[i]`` if given, else by row index.
  """
  x = np.asarray(x, np.float64)
  if mean is not None:
    mean = np.asarray(mean, np.float64)
    if mean.shape != x.shape[-1:]:
      raise ValueError(f"mean {mean.shape} must be one vector of the embeddings' size ({x.shape[-1]},)")
    x = x - mean
  norm = np.linalg.norm(x, axis=-1, keepdims=True)
  bad = np.flatnonzero(~(norm[:, 0] > 0))
  if bad.size:
    name = repr(str(names[bad[0]])) if names is not None else f"row {bad[0]}"
    raise ValueError(f"{bad.size} embeddings have zero or non-finite norm after mean subtraction "
                     f"(first {name}); cosine scores need non-zero finite vectors")
  return x / norm


def _unit_rows(embeddings, keys_by_side, mean):
  """Unit vectors of the utterances ``keys_by_side`` name, and each side's rows into them."""
  index, matrix = _table(embeddings)
  rows = [_rows(index, keys, side) for side, keys in keys_by_side]
  used, inverse = np.unique(np.concatenate(rows), return_inverse=True)
  names = list(index)
  unit = normalize_embeddings(matrix[used], mean, [names[i] for i in used])
  return unit, np.split(inverse, np.cumsum([len(r) for r in rows])[:-1])


def cosine_scores(enrol, test, embeddings, mean=None, chunk=65536):
  """Cosine score of each trial, as wespeaker's ``score.py``.

  Parameters
  ----------
  enrol, test : (n,) utterance keys, e.g. ``trials.enrol``, ``trials.test``
  embeddings : dict key -> vector (d,), or (keys, matrix (k, d))
  mean : (d,) subtracted from every embedding first (wespeaker ``--mean_vec``, the
    `mean_embedding` of a training set), or None
  chunk : trials scored at a time (bounds memory on the 580k-trial lists)

  Returns
  -------
  scores (n,) float64 in [-1, 1]: cos(e - mean, t - mean)
  """
  unit, (e, t) = _unit_rows(embeddings, (("enrol", enrol), ("test", test)), mean)
  out = np.empty(len(e), np.float64)
  for i in range(0, len(e), chunk):
    out[i:i + chunk] = np.einsum("ij,ij->i", unit[e[i:i + chunk]], unit[t[i:i + chunk]])
  return out


def cohort_statistics(x, cohort, top_n, ddof=0, chunk=1024):
  """Mean and std (n,) of each row's ``top_n`` largest cosine scores against a cohort.

  Parameters
  ----------
  x : (n, d) embeddings; cohort : (m, d) embeddings (rows are L2-normalised here; subtract
    any mean first)
  top_n : the N largest scores of each row kept (wespeaker: sort descending, take N), or
    None for the whole cohort (S-norm)
  ddof : 0 = population std (wespeaker, numpy); 1 = unbiased (SpeechBrain's recipe, torch.std)
  chunk : rows scored at a time; memory is about chunk * m * 8 bytes

  Returns
  -------
  (mean, std), each (n,) float64
  """
  x, cohort = normalize_embeddings(x), normalize_embeddings(cohort)
  m = cohort.shape[0]
  top_n = m if top_n is None else int(top_n)
  if not ddof + 1 <= top_n <= m:
    raise ValueError(f"top_n must be between {ddof + 1} and the cohort size {m}, got {top_n}; "
                     "pass top_n=None to use the whole cohort (S-norm)")
  mean, std = np.empty(x.shape[0]), np.empty(x.shape[0])
  for i in range(0, x.shape[0], chunk):
    s = x[i:i + chunk] @ cohort.T
    if top_n < m:  # the top-N set, not its order, fixes mean and std
      s = np.partition(s, m - top_n, axis=1)[:, m - top_n:]
    mean[i:i + chunk], std[i:i + chunk] = s.mean(axis=1), s.std(axis=1, ddof=ddof)
  return mean, std


def as_norm(scores, enrol, test, embeddings, cohort, top_n, mean=None, ddof=0, chunk=1024):
  """Adaptive symmetric score normalisation, as wespeaker's ``score_norm.py``.

  Every enrol and test utterance gets the mean and std of its ``top_n`` largest cosine
  scores against the cohort (`cohort_statistics`), and each trial's score becomes
  ``0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)`` (Matejka et al., Interspeech 2017).

  Parameters
  ----------
  scores : (n,) raw trial scores, e.g. `cosine_scores` with the same ``mean``
  enrol, test : (n,) utterance keys
  embeddings : dict key -> vector, or (keys, matrix), holding every enrol and test key
  cohort : (m, d) matrix, dict or (keys, matrix); wespeaker's VoxCeleb recipe uses the
    per-speaker mean embeddings of VoxCeleb2-dev
  top_n : cohort scores kept per utterance, or None for all (S-norm)
  mean : (d,) subtracted from the evaluation and the cohort embeddings (wespeaker
    subtracts the same ``mean_vec`` from both), or None
  ddof, chunk : as `cohort_statistics`

  Returns
  -------
  normalised scores (n,) float64; raises ValueError for a zero cohort std
  """
  scores = np.asarray(scores, np.float64)
  if scores.shape != (len(enrol),) or len(enrol) != len(test):
    raise ValueError(f"scores {scores.shape}, enrol ({len(enrol)},) and test ({len(test)},) must match")
  unit, (e, t) = _unit_rows(embeddings, (("enrol", enrol), ("test", test)), mean)
  cohort = cohort if not isinstance(cohort, (dict, tuple)) else _table(cohort, "cohort")[1]
  cohort = np.asarray(cohort, np.float64)
  if mean is not None:
    cohort = cohort - np.asarray(mean, np.float64)
  mu, sd = cohort_statistics(unit, cohort, top_n, ddof, chunk)
  if not (sd > 0).all():
    raise ValueError(f"{int((~(sd > 0)).sum())} utterances have zero std over their top {top_n} cohort "
                     "scores; use a larger or more varied cohort")
  return 0.5 * ((scores - mu[e]) / sd[e] + (scores - mu[t]) / sd[t])


# ------------------------------------------------------------------------- EER and minDCF


def operating_points(labels, scores):
  """Every operating point of a threshold sweep.

  A trial is accepted as target when its score >= threshold. Thresholds are the distinct
  scores in increasing order, then +inf (reject all); tied trials switch together.

  Parameters
  ----------
  labels : (n,) 1 = target, 0 = non-target (or True/False), both classes present
  scores : (n,) finite, higher = more target-like

  Returns
  -------
  (thresholds, p_miss, p_fa), each (k + 1,) for k distinct scores: from (0, 1) at the
  lowest score to (1, 0) at +inf
  """
  labels, scores = _binary(labels, scores)
  n_tar = int(labels.sum())
  n_non = labels.size - n_tar
  if n_tar == 0 or n_non == 0:
    raise ValueError(f"EER and minDCF need both classes: got {n_tar} target and {n_non} non-target "
                     "trials; check the trial list and its labels (1 = target, 0 = non-target)")
  order = np.argsort(scores, kind="stable")
  s, y = scores[order], labels[order]
  below = np.r_[0, np.flatnonzero(np.diff(s)) + 1, s.size]  # trials under each threshold
  tar_below = np.r_[0, np.cumsum(y)][below]
  thresholds = np.r_[s[below[:-1]], np.inf]
  return thresholds, tar_below / n_tar, (n_non - (below - tar_below)) / n_non


def eer(labels, scores, rule="interpolate"):
  """Equal error rate and the threshold where it is reached.

  Parameters
  ----------
  labels, scores : as `operating_points`
  rule : "interpolate" (NIST, wespeaker ``compute_eer``): with k the first operating point
    where P_miss >= P_fa, the EER is where the segment from point k - 1 to k crosses
    P_miss = P_fa; the threshold is point k's. "nearest" (SpeechBrain ``EER``): the
    operating point with the smallest |P_fa - P_miss| (the lowest threshold among equals),
    EER = (P_fa + P_miss) / 2 there. SpeechBrain states the same point's threshold for the
    rule score > threshold, the next lower score.

  Returns
  -------
  (eer, threshold) floats; all scores equal give (0.5, +inf) and (0.5, that score) under
  "interpolate" and "nearest"; perfect separation gives (0.0, the lowest target score)
  """
  thresholds, p_miss, p_fa = operating_points(labels, scores)
  d = p_miss - p_fa  # non-decreasing from -1 (accept all) to 1 (reject all)
  if rule == "interpolate":
    k = int(np.flatnonzero(d >= 0)[0])
    a = d[k] / (d[k] - d[k - 1])
    return float(p_miss[k] + a * (p_miss[k - 1] - p_miss[k])), float(thresholds[k])
  if rule == "nearest":
    k = int(np.argmin(np.abs(d)))
    return float((p_miss[k] + p_fa[k]) / 2), float(thresholds[k])
  raise ValueError(f"rule must be 'interpolate' or 'nearest', got {rule!r}")


def min_dcf(labels, scores, p_target=0.01, c_miss=1.0, c_fa=1.0, normalize=True):
  """Minimum detection cost over the threshold sweep, and the threshold reaching it.

  ``DCF(t) = C_miss P_miss(t) p_target + C_fa P_fa(t) (1 - p_target)``, divided, when
  ``normalize``, by ``min(C_miss p_target, C_fa (1 - p_target))``, the cost of always
  accepting or always rejecting (NIST SRE; wespeaker ``compute_c_norm``).

  Parameters
  ----------
  labels, scores : as `operating_points`
  p_target : prior of a target trial, in (0, 1); c_miss, c_fa : positive costs
  normalize : False gives the raw cost, which SpeechBrain's ``minDCF`` reports

  Returns
  -------
  (min_dcf, threshold) floats; the lowest threshold among equal costs. Normalised, the
  value lies in [0, 1]: 0 for perfect separation, 1 when all scores are equal.
  """
  if not 0 < p_target < 1 or not c_miss > 0 or not c_fa > 0:
    raise ValueError(f"need 0 < p_target < 1 and positive costs; got p_target={p_target}, "
                     f"c_miss={c_miss}, c_fa={c_fa}")
  thresholds, p_miss, p_fa = operating_points(labels, scores)
  dcf = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)  # NIST SRE DCF
  k = int(np.argmin(dcf))
  c_default = min(c_miss * p_target, c_fa * (1 - p_target)) if normalize else 1.0
  return float(dcf[k] / c_default), float(thresholds[k])
