"""Speaker-verification EER and minDCF as wespeaker and SpeechBrain compute them.

On host NumPy arrays in float64. The definitions and the toolkit code they were checked
against:

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
(``np.round(scores, 5)``).
"""
import numpy as np

from mirjax.evaluation.metrics import _binary


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

