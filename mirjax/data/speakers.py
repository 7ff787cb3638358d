"""Speaker-verification data as mirjax sources: a VoxCeleb-layout folder (the real one, or
the embedded synthetic speakers) -> {"train", "test"} sources and an `Info`.

  "train"  the utterances of the Set "dev" speakers, each {"audio": float32 (samples,),
           "frames": float32 (n_frames, size, size, 3) in [0, 1] (where the folder has faces),
           "label": int32 index of its speaker in `Info.class_names`}
  "test"   the utterances of one trial list (`trial_list`, e.g. VoxCeleb1-O's
           veri_test2.txt), in key order, with the same fields ("label" indexes the test
           speakers, which no classifier row knows). It also carries what scoring needs:
           `keys` (an utterance key per example), `trials` (mirjax.evaluation.verification.Trials
           over those keys) and `cohort`, a source of `cohort_per_speaker` training utterances
           of every dev speaker (the AS-norm cohort and the mean embedding, as wespeaker
           takes them from its training set).

Trials whose utterances are missing or unreadable were dropped by `read_voxceleb`, which
counts and lists them; the Info records how many (`skipped_files` names each file).
"""
import numpy as np

from mirjax.data import voxceleb
from mirjax.data.info import Info
from mirjax.errors import DataError


class UtteranceSource:
  """Random-access source of utterances: audio, face frames when asked for, speaker label."""

  def __init__(self, utterances, labels, *, n_frames: int = 0, face_size: int = 0,
               sample_rate: int = voxceleb.SAMPLE_RATE):
    self.utterances, self.labels = tuple(utterances), np.asarray(labels, np.int32)
    self.n_frames, self.face_size, self.sample_rate = n_frames, face_size, sample_rate
    self.keys = tuple(u.key for u in self.utterances)

  def __len__(self):
    return len(self.utterances)

  def __getitem__(self, i):
    u = self.utterances[int(i)]
    ex = {"audio": voxceleb.load_audio(u, self.sample_rate), "label": self.labels[int(i)]}
    if self.n_frames:
      ex["frames"] = voxceleb.load_frames(u, self.n_frames, self.face_size)
    return ex


def verification_sources(vox: voxceleb.VoxCeleb, name: str, *, trial_list: str, n_frames: int,
                         face_size: int, cohort_per_speaker: int, seed: int = 0):
  """(sources, info) of a read VoxCeleb folder (see the module docstring).

  Args:
    vox: what `voxceleb.read_voxceleb` found.
    name: what results call the dataset (Info.name).
    trial_list: the trial list scored ("test"), a file name of voxceleb.TRIAL_LISTS.
    n_frames: face frames per utterance (0: audio only; then the folder needs no faces).
    face_size: face crops are face_size x face_size pixels.
    cohort_per_speaker: training utterances per dev speaker in the cohort (drawn with `seed`).

  Raises:
    DataError: the list is not in the folder or has no usable trial, the folder has no faces
      but frames are asked for, or a trial speaker is also a training speaker (VoxCeleb1-E
      and -H draw on VoxCeleb1 dev: train on VoxCeleb2 dev for those).
  """
  if trial_list not in vox.trials:
    raise DataError(f"trial list {trial_list!r} is not in {vox.root!r} (found {sorted(vox.trials)}); "
                    f"put it there or set --config.data.trial_list to one of {list(voxceleb.TRIAL_LISTS)}")
  trials = vox.trials[trial_list]
  if not trials:
    raise DataError(f"no usable trial in {trial_list!r} of {vox.root!r}: {voxceleb.report(vox)}")
  if n_frames and not vox.faces:
    raise DataError(f"this model sees faces but {vox.root!r} has no face frames; add them "
                    f"(see mirjax.data.voxceleb.LAYOUT) or train an audio-only variant")
  dev = vox.split("dev")
  if not dev:
    raise DataError(f"no speaker of Set 'dev' with usable audio in {vox.root!r}: nothing to train on")
  by_key = vox.by_key()
  keys = sorted({k for t in trials for k in (t.enrol, t.test)})
  test_utts = [by_key[k] for k in keys]
  overlap = sorted({u.speaker for u in test_utts} & set(dev))
  if overlap:
    raise DataError(f"{trial_list} holds speakers that are training speakers here ({len(overlap)}, "
                    f"e.g. {overlap[:3]}): its scores would not be held out. VoxCeleb1-E and -H draw "
                    "on VoxCeleb1 dev: train on VoxCeleb2 dev (Set 'dev' in vox2_meta.csv) for those")
  test_speakers = sorted({u.speaker for u in test_utts})
  label_of = {s: i for i, s in enumerate(dev)}
  train_utts = vox.utterances_of("dev")
  rng = np.random.default_rng([seed, 11])
  cohort_utts = []
  for s in dev:
    mine = [u for u in train_utts if u.speaker == s]
    pick = np.sort(rng.permutation(len(mine))[:cohort_per_speaker])
    cohort_utts += [mine[j] for j in pick]
  kw = dict(n_frames=n_frames, face_size=face_size, sample_rate=vox.sample_rate)
  train = UtteranceSource(train_utts, [label_of[u.speaker] for u in train_utts], **kw)
  test = UtteranceSource(test_utts, [test_speakers.index(u.speaker) for u in test_utts], **kw)
  test.trials = _trials(trials)
  test.trial_list = trial_list
  test.cohort = UtteranceSource(cohort_utts, [label_of[u.speaker] for u in cohort_utts], **kw)
  dropped = vox.dropped_trials.get(trial_list)
  info = Info(name=name, sample_rate=vox.sample_rate, class_names=tuple(dev),
              num_examples={"train": len(train), "test": len(test), "trials": len(trials),
                            "dropped_trials": dropped.count if dropped else 0,
                            "cohort": len(test.cohort)},
              skipped=vox.skipped, skipped_files=dict(vox.skipped_files),
              truncated_files=dict(vox.truncated_files))
  return {"train": train, "test": test}, info


def _trials(trials):
  from mirjax.evaluation.verification import Trials  # pylint: disable=import-outside-toplevel
  return Trials(np.array([t.enrol for t in trials]), np.array([t.test for t in trials]),
                np.array([t.label for t in trials], np.int8))
