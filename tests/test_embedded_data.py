"""The embedded default dataset: built from the music21 corpus on this machine (smoke config)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mirjax.data import embedded

from helpers import assert_audio_stored_as_int16_bytes

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def smoke(data_dir):
  return embedded.load("smoke", data_dir=data_dir)


def _all(src, key):
  return np.stack([np.asarray(src[i][key]) for i in range(len(src))])


def test_info_matches_examples(smoke):
  sources, info = smoke
  assert info.sample_rate == 16_000
  assert info.clip_samples == 3 * 16_000
  assert {s: len(sources[s]) for s in SPLITS} == info.num_examples
  # 16 pieces drawn, 4 clips each: every piece not skipped is in the data with all its clips.
  pieces = {int(sources[s][i]["piece"]) for s in SPLITS for i in range(len(sources[s]))}
  assert info.skipped == 16 - len(pieces)
  assert sum(info.num_examples.values()) == 4 * len(pieces)
  assert len(info.tag_names) == len(set(info.tag_names))
  for s in SPLITS:
    ex = sources[s][0]
    assert ex["audio"].dtype == np.int16 and ex["audio"].shape == (info.clip_samples,)
    assert ex["tags"].shape == (len(info.tag_names),)


def test_each_clip_names_its_piece_of_its_split(smoke, data_dir):
  """Every clip's `piece` is a corpus piece of its own split in the dataset's metadata (split
  by piece: no piece in two splits), with all 4 of its clips there."""
  from mirjax.data.builders.embedded_music import EmbeddedMusic  # pylint: disable=import-outside-toplevel
  from mirjax.data.embedded import corpus  # pylint: disable=import-outside-toplevel
  sources, _ = smoke
  meta = EmbeddedMusic(config="smoke", data_dir=data_dir).info.metadata
  pool = corpus.piece_pool()
  seen = {}
  for s in SPLITS:
    pieces, counts = np.unique(_all(sources[s], "piece"), return_counts=True)
    assert sorted(int(p) for p in pieces) == sorted(meta["split_pieces"][s]) and (counts == 4).all(), s
    seen[s] = set(int(p) for p in pieces)
  assert not (seen["train"] & seen["valid"] or seen["train"] & seen["test"] or seen["valid"] & seen["test"])
  assert all(meta["piece_paths"][str(p)] == pool[p] for ps in seen.values() for p in ps)


def test_audio_is_stored_as_int16_bytes(smoke, data_dir):
  """Each clip is stored as its raw int16 bytes (not widened to int64) and read back as is."""
  from mirjax.data.builders.embedded_music import EmbeddedMusic  # pylint: disable=import-outside-toplevel
  sources, info = smoke
  stored = assert_audio_stored_as_int16_bytes(EmbeddedMusic(config="smoke", data_dir=data_dir).data_dir,
                                              sources)
  assert {s: len(a) for s, a in stored.items()} == info.num_examples
  assert all(a.shape == (info.clip_samples,) for clips in stored.values() for a in clips)


def test_splits_are_piece_disjoint_and_about_80_10_10(smoke):
  sources, _ = smoke
  pieces = {s: set(_all(sources[s], "piece").tolist()) for s in SPLITS}
  assert not pieces["train"] & pieces["valid"]
  assert not pieces["train"] & pieces["test"]
  assert not pieces["valid"] & pieces["test"]
  n = sum(len(p) for p in pieces.values())
  assert 0.7 <= len(pieces["train"]) / n <= 0.9


@pytest.mark.parametrize("split", SPLITS)
def test_every_tag_has_positives_and_negatives(smoke, split):
  sources, info = smoke
  tags = _all(sources[split], "tags")
  assert set(np.unique(tags).tolist()) <= {0, 1}
  pos = tags.sum(axis=0)
  missing = [t for t, p in zip(info.tag_names, pos) if p in (0, len(tags))]
  assert not missing, f"{split}: {missing}"


def test_audio_is_nonsilent_and_not_clipped(smoke):
  sources, _ = smoke
  for s in SPLITS:
    audio = _all(sources[s], "audio").astype(np.float64) / 32768
    rms = np.sqrt(np.mean(audio**2, axis=1))
    assert rms.min() > 10 ** (-40 / 20)  # quietest level is -36 dBFS
    assert np.abs(audio).max() <= 0.99  # levelled to a 0.98 peak


def test_loud_clips_are_louder_than_quiet_ones(smoke):
  sources, info = smoke
  audio = np.concatenate([_all(sources[s], "audio") for s in SPLITS]).astype(np.float64)
  tags = np.concatenate([_all(sources[s], "tags") for s in SPLITS])
  rms = np.sqrt(np.mean(audio**2, axis=1))
  loud = rms[tags[:, info.tag_names.index("loud")] == 1]
  quiet = rms[tags[:, info.tag_names.index("quiet")] == 1]
  assert loud.min() > quiet.max()
  assert 20 * np.log10(loud.mean() / quiet.mean()) > 12


def test_fast_clips_have_more_onsets_than_slow_ones(smoke):
  import librosa  # pylint: disable=import-outside-toplevel
  sources, info = smoke
  audio = np.concatenate([_all(sources[s], "audio") for s in SPLITS]).astype(np.float32) / 32768
  tags = np.concatenate([_all(sources[s], "tags") for s in SPLITS])
  onsets = np.array([len(librosa.onset.onset_detect(y=a, sr=info.sample_rate)) for a in audio])
  fast = onsets[tags[:, info.tag_names.index("fast")] == 1]
  slow = onsets[tags[:, info.tag_names.index("slow")] == 1]
  assert fast.mean() > 1.5 * slow.mean()


@pytest.fixture(scope="module")
def second_build(tmp_path_factory):
  """Build smoke again in a fresh process and dir, with a stub `tensorflow` importable.

  Any import of TensorFlow on the build or read path would then land in sys.modules.
  """
  root = tmp_path_factory.mktemp("second_build")
  (root / "stub" / "tensorflow").mkdir(parents=True)
  (root / "stub" / "tensorflow" / "__init__.py").write_text('"""Not TensorFlow."""\n')
  code = ("import sys; import mirjax.data.embedded as e; "
          "assert 'tensorflow_datasets' not in sys.modules, 'tfds imported eagerly'; "
          f"src, _ = e.load('smoke', data_dir={str(root / 'tfds')!r}); src['train'][0]; "
          "print('TENSORFLOW_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TENSORFLOW')")
  paths = [str(root / "stub")] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
  return str(root / "tfds"), out.stdout


def test_no_tensorflow_is_imported(second_build):
  _, stdout = second_build
  assert "NO_TENSORFLOW" in stdout and "TENSORFLOW_IMPORTED" not in stdout


def test_same_seed_gives_identical_bytes(smoke, second_build):
  sources, info = smoke
  again, info2 = embedded.load("smoke", data_dir=second_build[0])
  assert info2 == info
  for s in SPLITS:
    for key in ("audio", "tags", "piece"):
      a, b = _all(sources[s], key), _all(again[s], key)
      assert a.tobytes() == b.tobytes(), (s, key)


def test_pieces_that_fail_are_skipped_and_counted(tmp_path, monkeypatch):
  """A smoke build where one drawn piece fails to parse and one training piece fails to
  render (in this process: the pool is bypassed, so the planted failures reach the build)."""
  from mirjax.data import parallel  # pylint: disable=import-outside-toplevel
  from mirjax.data.embedded import clips, corpus  # pylint: disable=import-outside-toplevel
  pool = corpus.piece_pool()
  unparsable = pool[corpus.choose(len(pool), 16, 0)[3]]
  parse, render, imap = corpus.parse, clips.render_piece, parallel.imap
  unrendered = []

  def planted_parse(rel_path):
    if rel_path == unparsable:
      raise ValueError("planted parse failure")
    return parse(rel_path)

  def planted_render(job):
    if not unrendered:  # the first training piece
      unrendered.append(job[1][0].piece)
      return "planted render failure"
    return render(job)

  def in_process(fn, items, workers, desc, **kw):
    del workers
    return imap(planted_render if fn is render and "rendering train" in desc else fn, items, 1, desc, **kw)

  monkeypatch.setattr(corpus, "parse", planted_parse)
  monkeypatch.setattr(parallel, "imap", in_process)
  sources, info = embedded.load("smoke", data_dir=str(tmp_path))
  assert info.skipped == 2
  pieces = {int(sources[s][i]["piece"]) for s in SPLITS for i in range(len(sources[s]))}
  assert len(pieces) == 14 and unrendered[0] not in pieces
  assert pool.index(unparsable) not in pieces
  assert sum(info.num_examples.values()) == 4 * 14


def test_bad_piece_is_described_not_raised(tmp_path):
  from mirjax.data.embedded import corpus  # pylint: disable=import-outside-toplevel
  bad = tmp_path / "bad.xml"
  bad.write_text("<score-partwise><part-list/></score-partwise>")
  assert isinstance(corpus.parse_or_error(str(bad)), str)
  notes = corpus.parse_or_error("bach/bwv66.6.mxl")
  assert notes.shape[1] == 4 and set(np.unique(notes[:, 3])) == {0, 1, 2, 3}
  assert np.all(np.diff(notes[:, 0]) >= 0)  # in onset order
  # the same events as music21's own tie merging (stripTies), part by part
  from music21 import converter  # pylint: disable=import-outside-toplevel
  score = converter.parseFile(corpus.corpus_dir() / "bach/bwv66.6.mxl", forceSource=True, storePickle=False)
  want = sorted((float(n.offset), float(n.quarterLength), int(p.midi), k)
                for k, part in enumerate(score.parts) for n in part.stripTies().flatten().notes
                if n.quarterLength > 0 for p in n.pitches)
  np.testing.assert_array_equal(np.array(sorted(map(tuple, notes.tolist()))), np.array(want))


@pytest.mark.parametrize("instruments,solo,want", [
    (("violin",), True, "solo"),
    (("violin", "violin", "violin"), False, "one_family"),  # tags violin + strings
    (("violin", "cello", "strings"), False, "one_family"),
    (("piano", "organ"), False, "one_family"),
    (("piano", "flute"), False, "mixed_families"),
    (("violin", "harp", "synth"), False, "mixed_families"),
])
def test_texture_label_counts_instrument_families(instruments, solo, want):
  from mirjax.data.embedded import tags  # pylint: disable=import-outside-toplevel
  label_of = embedded._label_fn("texture", tags.TAGS, {})  # pylint: disable=protected-access
  ex = {"tags": tags.multi_hot(instruments, "none" if solo else "backbeat", "medium", "medium", solo)}
  assert embedded.LABELS["texture"][label_of(ex)] == want


def test_families_cover_every_instrument_once():
  from mirjax.data.embedded import tags  # pylint: disable=import-outside-toplevel
  members = [m for f in embedded.FAMILIES.values() for m in f]
  assert sorted(members) == sorted(tags.INSTRUMENTS)


@pytest.mark.parametrize("label", sorted(embedded.LABELS))
def test_labels_agree_with_the_tags(data_dir, label):
  sources, info = embedded.load("smoke", data_dir=data_dir, label=label)
  assert info.class_names == embedded.LABELS[label]
  t = {n: k for k, n in enumerate(info.tag_names)}
  for s in SPLITS:
    for i in range(len(sources[s])):
      ex = sources[s][i]
      y, tg = int(ex["label"]), ex["tags"]
      assert 0 <= y < len(info.class_names)
      if label == "texture":
        assert (y == 0) == bool(tg[t["solo"]])
      if label == "drums":
        assert (y == 0) == (not tg[t["drums"]]) and (y == 1) == bool(tg[t["beat"]])
      if label == "tempo":
        assert (y == 2) == bool(tg[t["fast"]]) and (y == 0) == bool(tg[t["slow"]])


def test_a_build_uses_every_core_unless_the_config_says_how_many(tmp_path, monkeypatch):
  """data.build_workers reaches the build's process pools (0, the default: one per core the
  process may use); the pools are run in this process here, recording what they were given."""
  import os  # pylint: disable=import-outside-toplevel

  import ml_collections  # pylint: disable=import-outside-toplevel

  from mirjax.data import parallel, pipeline  # pylint: disable=import-outside-toplevel
  imap, asked = parallel.imap, []

  def recording(fn, items, workers, desc, **kw):
    asked.append(workers or parallel.default_workers())
    return imap(fn, items, 1, desc, **kw)

  monkeypatch.setattr(parallel, "imap", recording)
  assert parallel.default_workers() == len(os.sched_getaffinity(0))
  cfg = ml_collections.ConfigDict({"name": "embedded", "config": "smoke", "data_dir": str(tmp_path),
                                   "manual_dir": "", "label": "", "build_workers": 3})
  pipeline.load(cfg)
  assert asked and set(asked) == {3}
  assert parallel.default_workers() == len(os.sched_getaffinity(0))  # only inside the build
