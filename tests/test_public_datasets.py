"""MagnaTagATune, GTZAN, ESC-50 and NSynth builders on small folders in the real layouts,
faults included."""
import csv
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mirjax.data import audio_io, public
from mirjax.data.builders import esc50, gtzan, gtzan_splits, magnatagatune, nsynth

from helpers import (assert_audio_stored_as_int16_bytes, assert_reported_metrics_match,
                     rescore_with_sklearn)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
N_TAGS = 56  # more than 50, so the top-50 cut is exercised
TAG_NAMES = [f"tag {j:02d}" for j in range(N_TAGS)]
FOLDERS = "0123456789abcdef"


def _tone(seconds, freq, sr=SR, seed=0):
  t = np.arange(int(round(seconds * sr))) / sr
  noise = np.random.default_rng(seed).standard_normal(t.size)
  return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * noise).astype(np.float32)


def _write_tsv(path, header, rows):
  with open(path, "w", newline="") as f:
    w = csv.writer(f, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL)
    w.writerow(header)
    w.writerows(rows)


@pytest.fixture(scope="module")
def mtat_folder(tmp_path_factory):
  """Two readable clips per folder 0..f (29.2 s), plus: a clip with no top-50 tag, a short
  clip, Pons's excluded clip 35644, and a missing, an empty and a corrupt MP3."""
  root = tmp_path_factory.mktemp("mtat")
  # Tag j is on clips whose index is divisible by a step that grows with j, so counts fall
  # with j; the last 6 columns (ties broken by header order) drop out of the top 50.
  clips = []  # (clip_id, folder, kind)
  for k, folder in enumerate(FOLDERS):
    clips += [(1000 + 2 * k, folder, "ok"), (1001 + 2 * k, folder, "ok")]
  clips += [(2000, "1", "notags"), (2001, "2", "short"), (35644, "6", "ok"),
            (2002, "3", "missing"), (2003, "d", "empty"), (2004, "c", "corrupt")]
  rows, info_rows, expected = [], [], {}
  for n, (cid, folder, kind) in enumerate(clips):
    rel = f"{folder}/artist_{cid}-album-01-title_{cid}-0-29.mp3"
    labels = [int(kind != "notags" and j < N_TAGS - 1 and (n % (1 + j // 8) == 0 or j == n % N_TAGS))
              for j in range(N_TAGS)]
    if kind == "notags":
      labels[-1] = 1  # its one tag is on no other clip: the rarest, outside the top 50
    rows.append([str(cid)] + [str(v) for v in labels] + [rel])
    info_rows.append([str(cid), "1", f"title {cid}", f"artist {cid}", "album", "url", "0", "29",
                      "orig", rel])
    os.makedirs(root / folder, exist_ok=True)
    path = root / rel
    if kind in ("ok", "notags"):
      sf.write(path, _tone(29.2, 200 + 10 * n, seed=n), SR, format="MP3")
    elif kind == "short":
      sf.write(path, _tone(20.0, 300, seed=n), SR, format="MP3")
    elif kind == "empty":
      path.write_bytes(b"")
    elif kind == "corrupt":
      path.write_bytes(np.random.default_rng(0).bytes(5000))
    expected[cid] = (rel, kind, labels)
  _write_tsv(root / magnatagatune.ANNOTATIONS, ["clip_id"] + TAG_NAMES + ["mp3_path"], rows)
  _write_tsv(root / magnatagatune.CLIP_INFO,
             ["clip_id", "track_number", "title", "artist", "album", "url", "segmentStart",
              "segmentEnd", "original_url", "mp3_path"], info_rows)
  return str(root), expected


def _examples(src):
  return [src[i] for i in range(len(src))]


@pytest.fixture(scope="module")
def mtat_built(mtat_folder, data_dir):
  folder, _ = mtat_folder
  return {c: public.load_mtat(folder, data_dir, convention=c) for c in magnatagatune.CONVENTIONS}


def test_top50_tags_come_from_the_header_by_count(mtat_folder, mtat_built):
  folder, expected = mtat_folder
  _, info = mtat_built["all"]
  labels = np.array([v[2] for v in expected.values()])
  counts = labels.sum(axis=0)
  order = sorted(range(N_TAGS), key=lambda j: (-counts[j], j))[:50]
  assert info.tag_names == tuple(TAG_NAMES[j] for j in order)
  assert len(info.tag_names) == 50


def test_splits_follow_the_folders(mtat_built):
  sources, _ = mtat_built["all"]
  for split, folders in (("train", "0123456789ab"), ("valid", "c"), ("test", "def")):
    paths = [ex["mp3_path"].decode() for ex in _examples(sources[split])]
    assert paths and all(p[0] in folders for p in paths), (split, paths)


def test_conventions_select_the_published_clips(mtat_built):
  ids = {c: {int(ex["clip_id"]) for s in src.values() for ex in _examples(s)}
         for c, (src, _) in mtat_built.items()}
  readable = {1000 + i for i in range(32)} | {2000, 2001, 35644}
  assert ids["all"] == readable
  assert ids["pons"] == readable - {35644}
  assert ids["clean"] == readable - {2000, 2001}  # no top-50 tag; shorter than 29.1 s
  for c, (_, info) in mtat_built.items():
    assert info.name == f"mtat/{c}"


def test_bad_mp3s_are_skipped_counted_and_named(mtat_folder, data_dir, caplog):
  folder, expected = mtat_folder
  with caplog.at_level(logging.WARNING):
    _, info = public.load_mtat(folder, data_dir, convention="all", sample_rate=8000)
  bad = {rel: kind for rel, kind, _ in expected.values() if kind in ("missing", "empty", "corrupt")}
  assert info.skipped == 3 and set(info.skipped_files) == set(bad)
  for rel, kind in bad.items():
    assert {"missing": "not found", "empty": "empty", "corrupt": "not a decodable"}[kind] in info.skipped_files[rel]
  assert "skipped 3 unreadable" in caplog.text and all(rel in caplog.text for rel in bad)


def test_audio_tags_and_clip_info_are_stored(mtat_folder, mtat_built, data_dir):
  folder, expected = mtat_folder
  sources, info = mtat_built["all"]
  index = [TAG_NAMES.index(t) for t in info.tag_names]
  seen = 0
  for split in ("train", "valid", "test"):
    for ex in _examples(sources[split]):
      cid = int(ex["clip_id"])
      rel, _, labels = expected[cid]
      np.testing.assert_array_equal(ex["tags"], np.array(labels)[index])
      assert ex["artist"].decode() == f"artist {cid}" and ex["title"].decode() == f"title {cid}"
      if seen < 3:  # stored PCM = the decoded MP3, to int16 rounding
        ref = audio_io.load_audio(os.path.join(folder, rel), SR)
        assert ex["audio"].dtype == np.int16 and len(ex["audio"]) == len(ref)
        np.testing.assert_allclose(ex["audio"] / 32768.0, ref, atol=1.0 / 32768)
        seen += 1
  # Resampled at build time: half the rate, half the samples.
  src8, info8 = public.load_mtat(folder, data_dir, convention="all", sample_rate=8000)
  assert info8.sample_rate == 8000
  ex = src8["train"][0]
  full = [e for e in _examples(sources["train"]) if int(e["clip_id"]) == int(ex["clip_id"])][0]
  assert abs(len(ex["audio"]) - len(full["audio"]) / 2) <= 1


def test_mtat_audio_is_stored_as_int16_bytes_and_read_back_unchanged(mtat_folder, mtat_built, data_dir):
  """Clips of their own lengths (shape (None,)) are stored as raw int16 bytes and read back
  exactly as the decoded MP3 was written."""
  folder, expected = mtat_folder
  sources, _ = mtat_built["all"]
  stored = assert_audio_stored_as_int16_bytes(
      magnatagatune.make_builder(folder, data_dir, "all").data_dir, sources)
  ex = sources["test"][0]
  want = audio_io.try_decode((os.path.join(folder, expected[int(ex["clip_id"])][0]), SR))
  assert want.dtype == np.int16 and len(want) > 29 * SR
  np.testing.assert_array_equal(stored["test"][0], want)


def test_mtat_errors_say_what_to_do(tmp_path, data_dir):
  with pytest.raises(magnatagatune.MagnaTagATuneError, match="not found"):
    public.load_mtat(str(tmp_path / "nope"), data_dir)
  with pytest.raises(magnatagatune.MagnaTagATuneError, match="annotations_final.csv"):
    public.load_mtat(str(tmp_path), data_dir)
  with pytest.raises(ValueError, match="clean"):
    public.load_mtat(str(tmp_path), data_dir, convention="lee")


def test_top_k_ranks_zero_count_tags_last_ties_by_header(tmp_path):
  # Counts by column: a 0, b 2, c 0, d 3, e 2, f 1 (uint8 labels: a negated 0 sorts first).
  labels = {"a": [0, 0, 0], "b": [1, 1, 0], "c": [0, 0, 0], "d": [1, 1, 1], "e": [0, 1, 1],
            "f": [1, 0, 0]}
  rels = [f"{d}/artist-album-01-title_{i}-0-29.mp3" for i, d in enumerate("0cd")]
  rows = [[str(10 + i)] + [str(v[i]) for v in labels.values()] + [rels[i]] for i in range(3)]
  _write_tsv(tmp_path / magnatagatune.ANNOTATIONS, ["clip_id", *labels, "mp3_path"], rows)
  for k, want in ((3, ("d", "b", "e")), (4, ("d", "b", "e", "f")), (6, ("d", "b", "e", "f", "a", "c"))):
    names, clips = magnatagatune.read_annotations(tmp_path, top_k=k)
    assert names == want, k
    for i, clip in enumerate(clips):
      assert (clip.clip_id, clip.mp3_path, clip.split) == (10 + i, rels[i], ("train", "valid", "test")[i])
      np.testing.assert_array_equal(clip.tags, [labels[t][i] for t in want])


def test_a_subset_folder_with_tags_on_no_clip_builds(tmp_path, data_dir):
  # 5 tags in use among 55 columns, top_k 50: the 45 unused ones kept must come after them.
  used = {3: "guitar", 17: "piano", 30: "drums", 41: "vocal", 54: "slow"}
  names = [used.get(j, f"unused {j:02d}") for j in range(55)]
  rows, labels = [], {}
  for n, folder in enumerate("0cd"):
    rel = f"{folder}/artist_{n}-album-01-title_{n}-0-29.mp3"
    os.makedirs(tmp_path / folder, exist_ok=True)
    sf.write(tmp_path / rel, _tone(29.2, 220 + 50 * n, seed=n), SR, format="MP3")
    labels[500 + n] = [int(j == 17 or (j in used and (j + n) % 2 == 0)) for j in range(55)]
    rows.append([str(500 + n)] + [str(v) for v in labels[500 + n]] + [rel])
  _write_tsv(tmp_path / magnatagatune.ANNOTATIONS, ["clip_id"] + names + ["mp3_path"], rows)
  sources, info = public.load_mtat(str(tmp_path), data_dir, convention="clean")
  unused = [t for t in names if t not in used.values()]
  # Counts: piano 3, drums 2, slow 2, guitar 1, vocal 1, the rest 0 (ties: header order).
  assert info.tag_names == ("piano", "drums", "slow", "guitar", "vocal", *unused[:45])
  assert {s: len(src) for s, src in sources.items()} == {"train": 1, "valid": 1, "test": 1}
  index = [names.index(t) for t in info.tag_names]
  for src in sources.values():
    ex = _examples(src)[0]
    np.testing.assert_array_equal(ex["tags"], np.array(labels[int(ex["clip_id"])])[index])


def _main(config, folder, workdir, data_dir, *extra):
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  cmd = [sys.executable, "-m", "mirjax.main", f"--config={config}",
         f"--config.data.manual_dir={folder}", f"--workdir={workdir}",
         "--config.train.num_steps=3", "--config.train.batch_size=8", "--config.eval.batch_size=8",
         "--config.train.eval_every=3", "--config.train.checkpoint_every=3", *extra]
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_flagship_runs_on_mtat_with_the_chunk_protocol(mtat_folder, data_dir, tmp_path):
  folder, _ = mtat_folder
  # The CPU-sized back-end; :mtat counts in epochs, so a few steps are a small fraction of one.
  p = _main("configs/sincmodnet.py:mtat_small", folder, tmp_path, data_dir, "--config.train.num_epochs=0.05")
  assert p.returncode == 0, p.stderr[-4000:]
  results = json.load(open(tmp_path / "results.json"))
  assert results["dataset"] == "mtat/clean" and "mtat/clean" in p.stdout
  # The reported test ROC-AUC and PR-AUC are scikit-learn's on the scores of the step the
  # run selected (WORKDIR/best), each test clip scored on its own as 16 chunks.
  assert_reported_metrics_match(results, rescore_with_sklearn(str(tmp_path), data_dir))
  with open(tmp_path / "per_tag.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 50 and {r["tag"] for r in rows} == set(results["test/per_tag_roc_auc"])
  for r in rows:
    if r["roc_auc"]:
      assert float(r["roc_auc"]) == pytest.approx(results["test/per_tag_roc_auc"][r["tag"]], abs=1e-6)


def test_a_wrong_sample_rate_is_a_clear_error(mtat_folder, data_dir, tmp_path):
  folder, _ = mtat_folder
  p = _main("configs/sincmodnet.py:mtat", folder, tmp_path, data_dir, "--config.data.sample_rate=8000")
  assert p.returncode != 0 and "Traceback" not in p.stderr
  assert "8000 Hz" in p.stderr and "--config.data.sample_rate=16000" in p.stderr
  assert not os.path.exists(tmp_path / "checkpoints")
  assert "decoding" not in p.stderr  # refused before building anything


# --- GTZAN -------------------------------------------------------------------------------

GTZAN_SR = 22050


@pytest.fixture(scope="module")
def gtzan_folder(tmp_path_factory):
  """The first two files of each genre of each split (1 s at 22,050 Hz), the known corrupt
  jazz.00054.wav, and a stray file outside the split."""
  root = tmp_path_factory.mktemp("gtzan")
  written = {}
  for split in ("train", "valid", "test"):
    by_genre = {}
    for rel in gtzan_splits.files(split):
      by_genre.setdefault(rel.split("/")[0], []).append(rel)
    for genre, rels in by_genre.items():
      for rel in rels[:2]:
        os.makedirs(root / "genres" / genre, exist_ok=True)
        sf.write(root / "genres" / rel, _tone(1.0, 100 + 20 * len(written), GTZAN_SR), GTZAN_SR)
        written[rel] = split
  (root / "genres/jazz/jazz.00054.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
  sf.write(root / "genres/rock/rock.00050.wav", _tone(1.0, 440, GTZAN_SR), GTZAN_SR)  # valid list
  written["rock/rock.00050.wav"] = "valid"
  return str(root), written


def test_gtzan_fault_filtered_split_lists():
  files = {s: gtzan_splits.files(s) for s in ("train", "valid", "test")}
  assert {s: len(f) for s, f in files.items()} == {"train": 443, "valid": 197, "test": 290}
  assert not (set(files["train"]) & set(files["valid"])) and not (set(files["train"]) & set(files["test"]))
  assert not set(files["valid"]) & set(files["test"])
  assert "jazz/jazz.00054.wav" in files["train"]


def test_gtzan_builds_labels_splits_and_skips_the_corrupt_file(gtzan_folder, data_dir, caplog):
  folder, written = gtzan_folder
  with caplog.at_level(logging.WARNING):
    sources, info = public.load_gtzan(folder, data_dir)
  from mirjax.data.info import Info
  assert type(info) is Info
  assert info.class_names == gtzan.GENRES and info.name == "gtzan/filtered"
  assert "not a decodable" in info.skipped_files["jazz/jazz.00054.wav"]
  assert "jazz/jazz.00054.wav" in caplog.text
  got = {}
  for split, src in sources.items():
    for ex in _examples(src):
      rel = ex["path"].decode()
      got[rel] = split
      assert gtzan.GENRES[int(ex["label"])] == rel.split("/")[0]
      assert len(ex["audio"]) == SR  # 1 s resampled to 16 kHz
  assert got == written
  # Given the genres folder itself, the same files are found.
  _, info2 = public.load_gtzan(os.path.join(folder, "genres"), data_dir)
  assert info2.num_examples == info.num_examples


def test_gtzan_missing_folder_is_a_clear_error(tmp_path, data_dir):
  with pytest.raises(gtzan.GTZANError, match="genres"):
    public.load_gtzan(str(tmp_path), data_dir)


def test_genre_classification_runs_on_gtzan(gtzan_folder, data_dir, tmp_path):
  folder, _ = gtzan_folder
  p = _main("configs/melcnn.py:gtzan", folder, tmp_path, data_dir)
  assert p.returncode == 0, p.stderr[-4000:]
  results = json.load(open(tmp_path / "results.json"))
  assert results["dataset"] == "gtzan/filtered"
  # Accuracy and balanced accuracy are scikit-learn's on the selected step's predictions.
  assert_reported_metrics_match(results, rescore_with_sklearn(str(tmp_path), data_dir))
  assert not os.path.exists(tmp_path / "per_tag.csv")


# --- ESC-50 ------------------------------------------------------------------------------

ESC_SR = 44100


@pytest.fixture(scope="module")
def esc50_folder(tmp_path_factory):
  """Two clips of each of 3 classes in each of the 5 folds (0.5 s at 44.1 kHz), one of
  them empty, as in the ESC-50 repository."""
  root = tmp_path_factory.mktemp("esc50")
  os.makedirs(root / "meta")
  os.makedirs(root / "audio")
  rows, classes = [], ("dog", "rain", "crying_baby")
  for fold in range(1, 6):
    for target, cat in enumerate(classes):
      for take in "AB":
        name = f"{fold}-{1000 + target}-{take}-{target}.wav"
        rows.append([name, fold, target, cat, "False", str(1000 + target), take])
        if (fold, target, take) == (2, 1, "B"):
          (root / "audio" / name).write_bytes(b"")
        else:
          sf.write(root / "audio" / name, _tone(0.5, 300 + 100 * target, ESC_SR, seed=fold), ESC_SR)
  with open(root / "meta" / "esc50.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    w.writerows(rows)
  return str(root)


@pytest.mark.parametrize("fold", [1, 5])
def test_esc50_folds_labels_and_skips(esc50_folder, data_dir, fold):
  sources, info = public.load_esc50(esc50_folder, data_dir, fold=fold)
  assert info.class_names == ("dog", "rain", "crying_baby") and info.name == f"esc50/fold{fold}"
  assert info.skipped == 1 and "empty" in info.skipped_files["audio/2-1001-B-1.wav"]
  folds = {s: {int(ex["path"].decode().split("/")[1][0]) for ex in _examples(src)}
           for s, src in sources.items()}
  assert folds == {"test": {fold}, "valid": {fold % 5 + 1},
                   "train": set(range(1, 6)) - {fold, fold % 5 + 1}}
  for ex in _examples(sources["test"]):
    assert int(ex["label"]) == int(ex["path"].decode()[-5])
    assert len(ex["audio"]) == SR // 2  # 0.5 s resampled to 16 kHz


def test_esc50_bad_folder_and_fold_are_clear_errors(tmp_path, esc50_folder, data_dir):
  with pytest.raises(esc50.ESC50Error, match="esc50.csv"):
    public.load_esc50(str(tmp_path), data_dir)
  with pytest.raises(ValueError, match="folds 1-5"):
    public.load_esc50(esc50_folder, data_dir, fold=6)


def test_classification_runs_on_esc50(esc50_folder, data_dir, tmp_path):
  p = _main("configs/melcnn.py:gtzan", esc50_folder, tmp_path, data_dir, "--config.data.name=esc50",
            "--config.data.fold=3", "--config.data.crop_seconds=0.5")
  assert p.returncode == 0, p.stderr[-4000:]
  results = json.load(open(tmp_path / "results.json"))
  assert results["dataset"] == "esc50/fold3"
  assert_reported_metrics_match(results, rescore_with_sklearn(str(tmp_path), data_dir))


# --- NSynth ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsynth_folder(tmp_path_factory):
  """nsynth-train and nsynth-test with a few notes each (0.25 s), one note's file missing."""
  root = tmp_path_factory.mktemp("nsynth")
  notes = {}
  for sub, fams in (("nsynth-train", (0, 3, 9, 10)), ("nsynth-test", (0, 3, 9))):
    os.makedirs(root / sub / "audio")
    index = {}
    for fam in fams:
      for pitch in (40, 60):
        name = f"{nsynth.FAMILIES[fam]}_acoustic_{fam:03d}-{pitch:03d}-100"
        index[name] = {"note_str": name, "pitch": pitch, "velocity": 100, "sample_rate": 16000,
                       "instrument_family": fam, "instrument_family_str": nsynth.FAMILIES[fam],
                       "instrument_source": 0, "instrument_source_str": "acoustic"}
        if not (sub == "nsynth-test" and fam == 9 and pitch == 60):
          sf.write(root / sub / "audio" / f"{name}.wav", _tone(0.25, 55 * 2 ** ((pitch - 33) / 12)), SR)
        notes[f"{sub}/audio/{name}.wav"] = fam
    with open(root / sub / "examples.json", "w") as f:
      json.dump(index, f)
  return str(root), notes


def test_nsynth_families_splits_and_skips(nsynth_folder, data_dir):
  folder, notes = nsynth_folder
  sources, info = public.load_nsynth(folder, data_dir)
  assert info.class_names == nsynth.FAMILIES and set(sources) == {"train", "test"}
  assert list(info.skipped_files) == ["nsynth-test/audio/synth_lead_acoustic_009-060-100.wav"]
  got = {ex["path"].decode(): int(ex["label"]) for src in sources.values() for ex in _examples(src)}
  assert got == {p: f for p, f in notes.items() if p not in info.skipped_files}
  assert {ex["path"].decode().split("/")[0] for ex in _examples(sources["test"])} == {"nsynth-test"}


def test_nsynth_audio_is_stored_as_int16_bytes_and_read_back_unchanged(nsynth_folder, data_dir):
  """A labelled dataset's audio (shape (None,)) is stored as raw int16 bytes and read back
  as written: 16-bit WAVs at the dataset's rate give their own samples."""
  folder, _ = nsynth_folder
  sources, _ = public.load_nsynth(folder, data_dir)
  stored = assert_audio_stored_as_int16_bytes(nsynth.make_builder(folder, data_dir).data_dir, sources)
  for split, src in sources.items():
    for ex, audio in zip(_examples(src), stored[split]):
      pcm, _ = sf.read(os.path.join(folder, ex["path"].decode()), dtype="int16")
      np.testing.assert_array_equal(audio, pcm)


def test_nsynth_bad_index_is_a_clear_error(tmp_path, data_dir):
  with pytest.raises(nsynth.NSynthError, match="examples.json"):
    public.load_nsynth(str(tmp_path), data_dir)
  os.makedirs(tmp_path / "nsynth-valid")
  (tmp_path / "nsynth-valid" / "examples.json").write_text('{"x": {"instrument_family": 42}}')
  with pytest.raises(nsynth.NSynthError, match="instrument_family"):
    public.load_nsynth(str(tmp_path), data_dir)
