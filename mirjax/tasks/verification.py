"""Speaker verification: margin-softmax branch losses in training, trials scored at evaluation.

Training is speaker classification: every branch of the model (mirjax/models/speaker.py)
gives cosines with its classifier's rows, and its loss is an additive angular margin (AAM,
ArcFace) or additive margin (AM, CosFace) softmax against the integer `label`, with the
margin warmed up over training steps (`margin.margin_schedule`).

Evaluation scores a trial list as wespeaker does (mirjax/evaluation/verification.py): the
embeddings of every trial utterance (the mean of its chunks' unit embeddings), less the mean
embedding of a cohort of training utterances, cosine-scored, then (by default) AS-norm
against the cohort's per-speaker mean embeddings; EER and minDCF per condition:

  audio               enrol and test by voice
  visual              enrol and test by face
  fusion              the joint embedding (a "fusion" model's concatenation; otherwise the
                      concatenation of the unit audio and visual embeddings)
  score_fusion        the mean of the audio and the visual scores of a trial
  cross_audio_visual  enrol by voice, test by face (models whose two embeddings share one
                      space: the multi-view model's shared classifier)
  cross_visual_audio  enrol by face, test by voice
"""
import numpy as np

from mirjax.errors import ConfigError
from mirjax.evaluation import verification as vf
from mirjax.models import margin
from mirjax.tasks.common import masked_mean

CONDITIONS = ("audio", "visual", "fusion", "score_fusion", "cross_audio_visual", "cross_visual_audio")
SCORE_NORMS = ("asnorm", "none")


class Verification:
  """Branch losses for speaker classification and trial scoring for verification.

  Attributes:
    class_names: the training speakers (classifier rows).
    branches: the model's branches, each trained with the margin loss.
    loss: the model config's `loss` section (kind, margin, scale, easy_margin,
      initial_margin, warmup_start, warmup_end, schedule).
    cross_modal: score the cross-modal conditions (only for embeddings in one space).
    score_norm: "asnorm" (adaptive symmetric normalisation, top `top_n` cohort scores) or "none".
    primary: the condition whose EER and minDCF are also reported as "eer" and "min_dcf"
      (the first condition scored when empty).
  """
  target = "label"
  verifies = True  # evaluation embeds utterances and scores trials (jobs/train.evaluator)

  def __init__(self, class_names, branches, loss, *, cross_modal=False, score_norm="asnorm",
               top_n=300, p_target=0.01, eer_rule="interpolate", primary=""):
    if score_norm not in SCORE_NORMS:
      raise ConfigError(f"task.score_norm must be one of {list(SCORE_NORMS)}, got {score_norm!r}")
    if eer_rule not in ("interpolate", "nearest"):
      raise ConfigError(f"task.eer_rule must be 'interpolate' (wespeaker) or 'nearest' (SpeechBrain), "
                        f"got {eer_rule!r}")
    if primary and primary not in CONDITIONS:
      raise ConfigError(f"task.primary must be one of {list(CONDITIONS)} or '', got {primary!r}")
    self.class_names, self.branches = tuple(class_names), tuple(branches)
    self.loss = loss
    self.cross_modal, self.score_norm, self.top_n = bool(cross_modal), score_norm, int(top_n)
    self.p_target, self.eer_rule, self.primary = float(p_target), eer_rule, primary

  @property
  def n_outputs(self) -> int:
    return len(self.class_names)

  def margin(self, step=None):
    """The margin at training `step` (the final margin when None: held-out losses)."""
    c = self.loss
    if step is None:
      return c.margin
    return margin.margin_schedule(step, c.margin, c.warmup_start, c.warmup_end, c.initial_margin, c.schedule)

  def losses(self, outputs, batch, step=None):
    """{branch: mean margin-softmax loss} of the cosines of each branch against batch["label"]."""
    labels = batch["label"].astype(np.int32)
    m = self.margin(step)
    return {b: masked_mean(margin.margin_loss(self.loss.kind, outputs[b], labels, m, self.loss.scale,
                                              self.loss.easy_margin), batch.get("mask"))
            for b in self.branches}

  def predict(self, outputs):
    """{modality: unit embedding (batch, dim)}: what evaluation averages over chunks."""
    return {k: margin.l2_normalize(v) for k, v in outputs["embeddings"].items()}

  # ------------------------------------------------------------------ trial scoring (host)

  def conditions(self, modalities) -> tuple:
    """The conditions the embeddings `modalities` (keys of the model's embeddings) allow."""
    have = set(modalities)
    out = [m for m in ("audio", "visual") if m in have]
    if {"audio", "visual"} <= have:
      out += ["fusion", "score_fusion"]
      if self.cross_modal:
        out += ["cross_audio_visual", "cross_visual_audio"]
    elif "joint" in have:
      out.append("fusion")
    return tuple(out)

  def score(self, embeddings: dict, keys, trials, cohort: dict, cohort_labels) -> dict:
    """{condition: scores (n_trials,)} of `trials` (verification.Trials).

    embeddings: {modality: (n_utterances, dim)} rows in the order of `keys`;
    cohort: {modality: (n_cohort, dim)} training utterances of speakers `cohort_labels`.
    """
    index = {k: i for i, k in enumerate(keys)}
    e = np.array([index[k] for k in trials.enrol])
    t = np.array([index[k] for k in trials.test])
    emb = {m: np.asarray(v, np.float64) for m, v in embeddings.items()}
    coh = {m: np.asarray(v, np.float64) for m, v in cohort.items()}
    if "audio" in emb and "visual" in emb:
      if "joint" not in emb:  # concatenated unit embeddings (mean-subtracted first)
        unit = lambda x, c: vf.normalize_embeddings(x, c.mean(axis=0))
        emb["joint"] = np.concatenate([unit(emb[m], coh[m]) for m in ("audio", "visual")], axis=1)
        coh["joint"] = np.concatenate([unit(coh[m], coh[m]) for m in ("audio", "visual")], axis=1)
    means = {m: coh[m].mean(axis=0) for m in coh}
    # wespeaker's cohort: the mean embedding of each training speaker
    speakers = np.unique(cohort_labels)
    centroid = {m: np.stack([coh[m][cohort_labels == s].mean(axis=0) for s in speakers]) for m in coh}
    pair = {"audio": ("audio", "audio"), "visual": ("visual", "visual"), "fusion": ("joint", "joint"),
            "cross_audio_visual": ("audio", "visual"), "cross_visual_audio": ("visual", "audio")}
    out = {}
    for cond in self.conditions(emb):
      if cond == "score_fusion":
        continue
      a, b = pair[cond]
      out[cond] = self.pair_scores(emb[a][e], emb[b][t], (centroid[a], means[a]), (centroid[b], means[b]))
    if "score_fusion" in self.conditions(emb):
      out["score_fusion"] = 0.5 * (out["audio"] + out["visual"])
    return out

  def pair_scores(self, enrol, test, enrol_side, test_side):
    """Scores of trial pairs (rows of `enrol` and `test`, each side in its own modality).

    Each side is mean-subtracted with its modality's cohort mean and scaled to unit norm;
    the score is their cosine. With AS-norm (Matejka et al., Interspeech 2017) each enrol
    embedding is normalised by its top-N scores against the cohort of the test side's
    modality and each test embedding by the enrol side's (for one modality: wespeaker's AS-norm).
    A `top_n` beyond the cohort's size uses the whole cohort (S-norm).
    """
    (enrol_cohort, enrol_mean), (test_cohort, test_mean) = enrol_side, test_side
    u, v = vf.normalize_embeddings(enrol, enrol_mean), vf.normalize_embeddings(test, test_mean)
    scores = np.einsum("ij,ij->i", u, v)
    if self.score_norm == "none":
      return scores
    top_n = min(self.top_n, len(enrol_cohort), len(test_cohort))
    mu_e, sd_e = vf.cohort_statistics(u, test_cohort - test_mean, top_n)
    mu_t, sd_t = vf.cohort_statistics(v, enrol_cohort - enrol_mean, top_n)
    return 0.5 * ((scores - mu_e) / sd_e + (scores - mu_t) / sd_t)

  def evaluate_scores(self, scores: dict, labels) -> dict:
    """{"<condition>/eer", "<condition>/min_dcf"} of every scored condition (EER a fraction in
    [0, 1], not %), plus "eer" and "min_dcf" of the primary condition."""
    out = {}
    for cond, s in scores.items():
      out[f"{cond}/eer"] = vf.eer(labels, s, rule=self.eer_rule)[0]
      out[f"{cond}/min_dcf"] = vf.min_dcf(labels, s, p_target=self.p_target)[0]
    primary = self.primary or next(iter(scores))
    if primary not in scores:
      raise ConfigError(f"task.primary={primary!r} is not scored by this model; it scores {list(scores)}")
    out["eer"], out["min_dcf"] = out[f"{primary}/eer"], out[f"{primary}/min_dcf"]
    return out
