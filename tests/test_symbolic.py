"""Symbolic music: event tokens, piano rolls and MIDI against pretty_midi; the token datasets."""
import numpy as np
import pytest

from mirjax.data import symbolic
from mirjax.errors import DataError


def _notes(n=60, seed=0):
  """Random polyphony: chords, repeated pitches that overlap, gaps longer than 1 s."""
  rng = np.random.default_rng(seed)
  start = np.sort(rng.uniform(0, 12, n))
  start[5:8] = start[4]  # a chord
  start[20:] += 2.5  # a gap of over a second
  pitch = rng.integers(40, 80, n)
  pitch[30:34] = 60  # one pitch again and again, overlapping
  end = start + rng.uniform(0.004, 1.5, n)
  return np.stack([start, end, pitch, rng.integers(1, 128, n)], 1).astype(np.float64)


def test_tokens_decode_to_the_quantized_notes():
  notes = _notes()
  tokens = symbolic.encode(notes)
  assert tokens.dtype == np.int32 and tokens.min() >= 0 and tokens.max() < symbolic.BOS
  q = symbolic.quantize(notes)
  np.testing.assert_allclose(symbolic.decode(tokens), q, atol=1e-9)
  np.testing.assert_array_equal(symbolic.encode(q), tokens)  # quantized notes are a fixed point
  # the grid: 10 ms steps, every note at least one step, at most 1 s a shift
  assert np.allclose(q[:, :2] * 100, np.round(q[:, :2] * 100)) and np.all(q[:, 1] > q[:, 0])
  assert np.abs(q[:, 0] - notes[np.lexsort((notes[:, 2], notes[:, 0]))][:len(q), 0]).max() <= 0.005 + 1e-9
  shifts = tokens[(tokens >= symbolic.TIME_SHIFT) & (tokens < symbolic.VELOCITY)] - symbolic.TIME_SHIFT + 1
  assert shifts.sum() == round(q[:, :2].max() * 100)


def test_decode_reads_any_token_sequence():
  """Sampled sequences are not always well formed: a note-on of a sounding pitch ends it, a
  stray note-off is ignored, EOS stops, unfinished notes end at the last time."""
  on, off, shift = symbolic.NOTE_ON, symbolic.NOTE_OFF, symbolic.TIME_SHIFT
  toks = [symbolic.BOS, on + 60, shift + 9, on + 60, off + 61, shift + 4, on + 64, symbolic.EOS, on + 70]
  got = symbolic.decode(toks)
  v = symbolic.DEFAULT_VELOCITY
  np.testing.assert_allclose(got, [[0.0, 0.1, 60, v], [0.1, 0.15, 60, v], [0.15, 0.16, 64, v]])


def test_velocity_bins_cover_midi_velocities():
  v = np.arange(1, 128)
  b = symbolic.velocity_bin(v)
  assert b.min() == 0 and b.max() == symbolic.VELOCITY_BINS - 1
  np.testing.assert_array_equal(symbolic.velocity_bin(symbolic.bin_velocity(b)), b)
  assert np.abs(symbolic.bin_velocity(b) - v).max() <= 2


def test_piano_roll_marks_the_frames_pretty_midi_marks():
  pretty_midi = pytest.importorskip("pretty_midi")
  notes = _notes(seed=1)
  inst = pretty_midi.Instrument(0)
  for s, e, p, v in notes.tolist():
    inst.notes.append(pretty_midi.Note(velocity=int(v), pitch=int(p), start=s, end=e))
  for fs in (100.0, 31.25):
    want = inst.get_piano_roll(fs=fs).T > 0
    got = symbolic.piano_roll(notes, fs=fs, frames=want.shape[0])
    np.testing.assert_array_equal(got, want)
  assert symbolic.piano_roll(notes, fs=100.0).shape == (int(notes[:, 1].max() * 100), 128)


def test_midi_files_round_trip(tmp_path):
  q = symbolic.quantize(_notes(seed=2))
  symbolic.write_midi(q, tmp_path / "a.mid")
  back = symbolic.read_midi(tmp_path / "a.mid")
  np.testing.assert_allclose(back, q, atol=2e-3)  # MIDI ticks of 1/440 s at 120 bpm, 220 ticks a beat
  np.testing.assert_array_equal(symbolic.encode(back), symbolic.encode(q))


def test_windows_predict_every_token_once():
  toks = np.arange(10, 25, dtype=np.int32)  # 15 tokens: BOS + 15 + EOS = 17
  w = symbolic.windows(toks, 6)
  assert w.shape == (3, 7) and w.dtype == np.int32
  targets = w[:, 1:].reshape(-1)
  np.testing.assert_array_equal(targets[:16], np.r_[toks, symbolic.EOS])
  assert np.all(targets[16:] == symbolic.PAD) and w[0, 0] == symbolic.BOS
  np.testing.assert_array_equal(w[1:, 0], w[:-1, -1])  # each window starts where the last ended


def _midi_folder(root, n_per_style=3):
  for style in ("baroque", "jazz"):
    (root / style).mkdir(parents=True)
    for k in range(n_per_style):
      symbolic.write_midi(_notes(30, seed=10 * k + len(style)), root / style / f"{k}.mid")
  (root / "jazz" / "broken.mid").write_bytes(b"MThd\x00\x00garbage")
  (root / "jazz" / "empty.midi").write_bytes(b"")
  symbolic.write_midi(_notes(5, seed=3), root / "baroque" / "short.mid")  # too few notes


def test_a_midi_folder_skips_and_counts_files_it_cannot_use(tmp_path):
  _midi_folder(tmp_path / "midi")
  pieces, skipped = symbolic.read_folder(tmp_path / "midi")
  assert len(pieces) == 6
  assert sorted(skipped) == ["baroque/short.mid", "jazz/broken.mid", "jazz/empty.midi"]
  assert "notes" in skipped["baroque/short.mid"] and "MIDI" in skipped["jazz/broken.mid"]
  with pytest.raises(DataError, match="does not exist"):
    symbolic.read_folder(tmp_path / "nowhere")
  (tmp_path / "empty").mkdir()
  with pytest.raises(DataError, match="no .mid"):
    symbolic.read_folder(tmp_path / "empty")


def test_the_midi_dataset_holds_every_piece_once_in_windows(tmp_path):
  import ml_collections

  from mirjax.data import pipeline
  _midi_folder(tmp_path / "midi")
  cfg = ml_collections.ConfigDict(dict(name="midi", config="default", manual_dir=str(tmp_path / "midi"),
                                       data_dir=str(tmp_path / "tfds"), sequence_length=64))
  sources, info = pipeline.DATASETS["midi"].load(cfg, str(tmp_path / "tfds"))
  assert info.vocab_size == symbolic.VOCAB and info.class_names == ("baroque", "jazz")
  assert info.skipped == 3 and set(info.skipped_files) == {"baroque/short.mid", "jazz/broken.mid", "jazz/empty.midi"}
  seen = {}
  for split, src in sources.items():
    assert len(src) == info.num_examples[split] > 0
    for i in range(len(src)):
      ex = src[i]
      assert ex["tokens"].shape == (65,) and ex["tokens"].dtype == np.int32
      seen.setdefault(int(ex["piece"]), []).append((split, ex["tokens"], int(ex["style"])))
  assert sorted(seen) == list(range(6))  # each piece in one split, whole
  pieces, _ = symbolic.read_folder(tmp_path / "midi")
  for i, rows in seen.items():
    assert len({s for s, _, _ in rows}) == 1 and {st for _, _, st in rows} == {int(pieces[i][0].startswith("jazz"))}
    seq = np.concatenate([rows[0][1][:1]] + [t[1:] for _, t, _ in rows])
    np.testing.assert_array_equal(seq[1:1 + len(symbolic.encode(pieces[i][1]))], symbolic.encode(pieces[i][1]))
  # a second load reads the cache: the same windows
  again, _ = pipeline.DATASETS["midi"].load(cfg, str(tmp_path / "tfds"))
  np.testing.assert_array_equal(again["train"].arrays["tokens"], sources["train"].arrays["tokens"])


def test_the_notes_dataset_has_the_embedded_pieces_and_split(data_dir):
  """The smoke config's pieces and split by piece are the embedded audio dataset's."""
  from mirjax.data import embedded
  from mirjax.data.builders.embedded_music import EmbeddedMusic
  from mirjax.data.embedded import corpus
  embedded.load("smoke", data_dir=data_dir)
  meta = EmbeddedMusic(config="smoke", data_dir=data_dir).info.metadata
  cache = symbolic.cached_tokens(data_dir, config_name="smoke")
  pool = corpus.piece_pool()
  ids = {p: i for i, p in enumerate(pool)}
  for k, split in enumerate(("train", "valid", "test")):
    got = sorted(ids[str(n)] for n in cache["names"][cache["split"] == k])
    assert got == sorted(meta["split_pieces"][split])
  composers = embedded.LABELS["composer"]
  assert [composers[s] for s in cache["styles"]] == [str(n).split("/")[0] for n in cache["names"]]
  first = str(cache["names"][0])
  want = symbolic.encode(symbolic.from_corpus(corpus.parse(first)))
  np.testing.assert_array_equal(cache["tokens"][cache["offsets"][0]:cache["offsets"][1]], want)
