"""Listening data (mirjax/data/listening.py): the Plays type, the Taste Profile format, the
simulated listeners and the cold-start split. Most tests use plain arrays; one opens the
smoke embedded dataset."""
import gzip

import numpy as np
import pytest

from mirjax.data import embedded, listening
from mirjax.errors import ConfigError, DataError


def _songs(n=300, groups=6, tags=8, seed=1):
  """(attributes, group): one-hot group ("composer") columns, then random 0/1 tags."""
  rng = np.random.default_rng(seed)
  group = rng.integers(0, groups, n)
  return np.concatenate([np.eye(groups)[group], rng.random((n, tags)) < 0.3], 1), group


def _triplets(plays):
  """The feedback as a set of (user id, song id, count), independent of indexing."""
  return set(zip(plays.user_ids[plays.users].tolist(), plays.song_ids[plays.songs].tolist(),
                 plays.counts.tolist()))


def _same_group_co_plays(plays, group, rng, shuffles=20):
  """Mean users shared by two songs of one group, over that mean with groups shuffled."""
  played = (plays.to_csr() > 0).astype(np.float32)
  shared = (played.T @ played).toarray()
  off_diagonal = ~np.eye(len(group), dtype=bool)
  def mean(g):
    return shared[(g[:, None] == g[None]) & off_diagonal].mean()
  return mean(group) / np.mean([mean(rng.permutation(group)) for _ in range(shuffles)])


# --- Plays ----------------------------------------------------------------------------------

def test_plays_sum_repeated_pairs_and_sort():
  plays = listening.Plays(users=[1, 0, 1, 1], songs=[2, 1, 0, 2], counts=[3, 1, 2, 4],
                          user_ids=("a", "b"), song_ids=("x", "y", "z"))
  np.testing.assert_array_equal(plays.users, [0, 1, 1])
  np.testing.assert_array_equal(plays.songs, [1, 0, 2])
  np.testing.assert_array_equal(plays.counts, [1, 2, 7])  # (b, z) played 3 + 4 times
  assert plays.users.dtype == plays.songs.dtype == plays.counts.dtype == np.int32
  assert (plays.n_users, plays.n_songs, plays.n_plays) == (2, 3, 3)
  csr = plays.to_csr()
  assert csr.dtype == np.float32 and csr.shape == (2, 3)
  np.testing.assert_array_equal(csr.toarray(), [[0, 1, 0], [2, 0, 7]])
  again = listening.Plays([0, 1, 1], [1, 0, 2], [1, 2, 7], ["a", "b"], ["x", "y", "z"])
  assert plays == again and plays != plays.select(np.array([True, True, False]))
  with pytest.raises(ValueError):
    plays.counts[0] = 5  # read-only: a frozen Plays cannot change under a split


@pytest.mark.parametrize("users,songs,counts,user_ids,match", [
    ([0, 2], [0, 0], [1, 1], ("a", "b"), "users must be integer indices in"),
    ([0, 1], [0, 0], [1, 0], ("a", "b"), "positive integers"),
    ([0, 1], [0, 0], [1, 1.5], ("a", "b"), "positive integers"),
    ([0, 1], [0], [1, 1], ("a", "b"), "differ in length"),
    ([0, 1], [0, 0], [1, 1], ("a", "a"), "repeats the id 'a'"),
])
def test_plays_reject_bad_entries(users, songs, counts, user_ids, match):
  with pytest.raises(DataError, match=match):
    listening.Plays(users, songs, counts, user_ids, ("x",))


# --- the Taste Profile format ---------------------------------------------------------------

def test_read_taste_profile_parses_triplets(tmp_path):
  path = tmp_path / "triplets.txt"
  path.write_bytes(b"u2\tSOB\t3\r\n"
                   b"b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAKIMP12A8C130995\t1\n"
                   b"\n"  # a blank line is skipped
                   b"u2\tSOA\t12\n"
                   b"u2\tSOB\t4\n")  # repeated pair: summed with line 1
  plays = listening.read_taste_profile(path)
  assert plays.user_ids.tolist() == ["b80344d063b5ccb3212f76538f3d9e43d87dca9e", "u2"]
  assert plays.song_ids.tolist() == ["SOA", "SOAKIMP12A8C130995", "SOB"]
  assert _triplets(plays) == {("b80344d063b5ccb3212f76538f3d9e43d87dca9e", "SOAKIMP12A8C130995", 1),
                              ("u2", "SOA", 12), ("u2", "SOB", 7)}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("chunk_bytes", [64, listening.CHUNK_BYTES])
def test_taste_profile_round_trip(tmp_path, gz, chunk_bytes):
  plays = listening.simulate(_songs(n=40)[0], n_users=200, seed=3)
  assert np.all(np.bincount(plays.songs, minlength=40) > 0)  # else those songs cannot round-trip
  path = str(tmp_path / ("plays.txt.gz" if gz else "plays.txt"))
  listening.write_taste_profile(plays, path)
  if gz:
    with gzip.open(path, "rt") as f:
      assert f.readline().count("\t") == 2
  # 64-byte chunks cut lines everywhere: the chunk seams must not change the result
  assert listening.read_taste_profile(path, chunk_bytes=chunk_bytes) == plays


def test_write_taste_profile_drops_users_without_plays(tmp_path):
  plays = listening.Plays([0, 0], [1, 0], [2, 5], ("u0", "u1"), ("s0", "s1", "s2"))
  listening.write_taste_profile(plays, tmp_path / "p.txt")
  assert (tmp_path / "p.txt").read_text() == "u0\ts0\t5\nu0\ts1\t2\n"
  back = listening.read_taste_profile(tmp_path / "p.txt")
  assert _triplets(back) == _triplets(plays) and back.n_users == 1 and back.n_songs == 2
  with pytest.raises(DataError, match="no tab or line end"):
    listening.write_taste_profile(listening.Plays([0], [0], [1], ("a\tb",), ("s",)), tmp_path / "q.txt")


@pytest.mark.parametrize("text,match", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b"u\ts\t1\nu\ts\n", r"line 2: expected 3 tab-separated fields, found 2"),
    (b"u\ts\t1\n\nu\ts\t1\t9\n", r"line 3: expected 3 tab-separated fields, found 4"),
    (b"u s 1\n", r"line 1: expected 3 tab-separated fields, found 1"),
    (b"u\ts\t1\nu\t\t1\n", r"line 2: a field is empty"),
    (b"u\ts\t0\n", r"line 1: the play count must be a positive integer"),
    (b"u\ts\t2\nv\ts\t-2\n", r"line 2: the play count must be a positive integer"),
    (b"u\ts\t1.5\n", r"line 1: the play count must be a positive integer"),
    (b"u\ts\t12345678901\n", r"line 1: the play count must be a positive integer"),
])
def test_read_taste_profile_says_what_is_wrong(tmp_path, text, match):
  path = tmp_path / "triplets.txt"
  if text is not None:
    path.write_bytes(text)
  with pytest.raises(DataError, match=match) as error:
    listening.read_taste_profile(path)
  if "line" in match:
    assert "user<TAB>song<TAB>count" in str(error.value)  # says what a line should be


def test_read_taste_profile_rejects_a_broken_gzip(tmp_path):
  path = tmp_path / "triplets.txt.gz"
  path.write_bytes(gzip.compress(b"u\ts\t1\n" * 100)[:-20])
  with pytest.raises(DataError, match="not a complete gzip file"):
    listening.read_taste_profile(path)


# --- simulated listeners --------------------------------------------------------------------

def test_simulate_is_deterministic_per_seed():
  attributes, _ = _songs(n=100)
  a = listening.simulate(attributes, n_users=200, seed=7)
  b = listening.simulate(attributes, n_users=200, seed=7)
  c = listening.simulate(attributes, n_users=200, seed=8)
  assert a == b and a != c
  assert a.n_users == 200 and a.n_songs == 100
  assert np.all(np.bincount(a.users, minlength=200) >= 5)  # min_songs_per_user
  ids = np.array([f"clip{i}" for i in range(100)])
  np.testing.assert_array_equal(listening.simulate(attributes, 20, song_ids=ids).song_ids, ids)


def test_simulated_songs_sharing_attributes_are_co_played():
  attributes, group = _songs()
  rng = np.random.default_rng(0)
  liked = _same_group_co_plays(listening.simulate(attributes, 2000, seed=0), group, rng)
  # Measured 1.30 (seeds 0-4: 1.25-1.33). Taste alone makes it: without it (beta 0), 0.99.
  assert liked > 1.2
  indifferent = _same_group_co_plays(listening.simulate(attributes, 2000, seed=0, beta=0.0), group, rng)
  assert abs(indifferent - 1.0) < 0.05


def test_simulated_popularity_activity_and_counts_are_heavy_tailed():
  attributes, _ = _songs()
  plays = listening.simulate(attributes, 2000, seed=0)
  per_song = np.sort(np.bincount(plays.songs, plays.counts, minlength=300))[::-1]
  assert per_song[:30].sum() / per_song.sum() > 0.3  # top 10% of songs; uniform gives 0.1 (measured 0.38)
  per_user = np.bincount(plays.users)
  assert per_user.min() >= 5 and per_user.max() <= 150  # clipped to [min_songs_per_user, n_songs // 2]
  assert per_user.max() > 5 * np.median(per_user)  # measured 150 vs 13
  assert abs(per_user.mean() - 20) < 3  # mean_songs_per_user, a little off by the clipping
  assert plays.counts.max() > 30 * np.median(plays.counts)  # measured 507 vs 2
  fond = listening.simulate(attributes, 2000, seed=0, count_beta=3.0)
  assert fond.counts.mean() > 1.5 * plays.counts.mean()  # counts grow with affinity


@pytest.mark.parametrize("kwargs,error", [
    ({"song_attributes": np.zeros(5)}, DataError),
    ({"song_attributes": np.full((5, 2), np.nan)}, DataError),
    ({"n_users": 0}, ConfigError),
    ({"taste_background": 1.5}, ConfigError),
    ({"count_mean": 0.5}, ConfigError),
    ({"song_ids": ["a", "b"]}, DataError),
])
def test_simulate_rejects_bad_settings(kwargs, error):
  args = {"song_attributes": _songs(n=10)[0], "n_users": 10, **kwargs}
  with pytest.raises(error):
    listening.simulate(**args)


# --- the cold-start split -------------------------------------------------------------------

def test_split_cold_start_partitions_users_and_plays():
  attributes, _ = _songs(n=120)
  plays = listening.simulate(attributes, n_users=400, seed=2, mean_songs_per_user=8.0, min_songs_per_user=2)
  cold = np.zeros(120, bool)
  cold[::5] = True
  split = listening.split_cold_start(plays, cold, test_user_fraction=0.25, seed=0)
  np.testing.assert_array_equal(split.cold_songs, np.flatnonzero(cold))
  np.testing.assert_array_equal(split.warm_songs, np.flatnonzero(~cold))
  # no training user played a cold song; test targets are cold, histories warm
  assert not np.any(cold[split.train.songs]) and not np.any(cold[split.test_history.songs])
  assert np.all(cold[split.test_target.songs])
  # users: train, test and dropped partition all users; 100 were drawn as test users
  users = np.concatenate([split.train_users, split.test_users, split.dropped_users])
  np.testing.assert_array_equal(np.sort(users), np.arange(400))
  assert len(split.test_users) + len(split.dropped_users) == 100 and len(split.dropped_users) > 0
  assert set(split.train.users) <= set(split.train_users)
  assert set(split.test_history.users) == set(split.test_target.users) == set(split.test_users)
  # every play lands in exactly one part, and the parts keep the global index space
  parts = (split.train, split.test_history, split.test_target, split.discarded)
  assert all(p.n_users == 400 and p.n_songs == 120 for p in parts)
  assert sum(p.n_plays for p in parts) == plays.n_plays
  assert set().union(*map(_triplets, parts)) == _triplets(plays)
  dropped_plays = np.isin(plays.users, split.dropped_users).sum()
  train_cold_plays = (np.isin(plays.users, split.train_users) & cold[plays.songs]).sum()
  assert split.discarded.n_plays == dropped_plays + train_cold_plays
  # deterministic per seed; indices and a mask give the same split
  again = listening.split_cold_start(plays, np.flatnonzero(cold), test_user_fraction=0.25, seed=0)
  assert again.train == split.train and again.test_target == split.test_target
  other = listening.split_cold_start(plays, cold, test_user_fraction=0.25, seed=1)
  assert not np.array_equal(other.test_users, split.test_users)


@pytest.mark.parametrize("cold,fraction,error,match", [
    (np.zeros(10, bool), 0.2, DataError, "0 of 10 songs are cold"),
    (np.ones(10, bool), 0.2, DataError, "10 of 10 songs are cold"),
    (np.zeros(9, bool), 0.2, DataError, "mask has shape"),
    (np.array([3, 12]), 0.2, DataError, "indices in"),
    (np.array([3]), 1.0, ConfigError, "test_user_fraction"),
    (np.array([3]), 0.01, DataError, "no test user"),  # round(0.01 * 30) = 0 test users
])
def test_split_cold_start_rejects_what_cannot_be_split(cold, fraction, error, match):
  plays = listening.simulate(_songs(n=10)[0], n_users=30, seed=0)
  with pytest.raises(error, match=match):
    listening.split_cold_start(plays, cold, test_user_fraction=fraction)


# --- the embedded clips as songs ------------------------------------------------------------

def test_embedded_song_attributes_feed_the_protocol(data_dir):
  songs = listening.embedded_song_attributes("smoke", data_dir=data_dir)
  sources, info = embedded.load("smoke", data_dir=data_dir)
  n = sum(info.num_examples.values())
  n_classes = sum(len(c) for c in embedded.LABELS.values())
  assert songs.values.shape == (n, len(info.tag_names) + n_classes) == (n, len(songs.names))
  assert songs.names[0] == f"tag:{info.tag_names[0]}" and "composer:bach" in songs.names
  assert {s: int(np.sum(songs.split == s)) for s in info.num_examples} == info.num_examples
  # first columns are the example's tags; each label block is one-hot and matches load(label=)
  k = songs.song_ids.tolist().index("valid/3")
  np.testing.assert_array_equal(songs.values[k, :len(info.tag_names)], sources["valid"][3]["tags"])
  start = len(info.tag_names)
  for name, classes in embedded.LABELS.items():
    block = songs.values[:, start:start + len(classes)]
    np.testing.assert_array_equal(block.sum(1), 1.0)
    labelled, _ = embedded.load("smoke", data_dir=data_dir, label=name)
    assert block[k].argmax() == int(labelled["valid"][3]["label"])
    start += len(classes)
  assert not set(songs.piece[songs.split == "train"]) & set(songs.piece[songs.split != "train"])
  # the intended use: held-out clips are the cold songs
  plays = listening.simulate(songs.values, n_users=300, seed=0, song_ids=songs.song_ids)
  split = listening.split_cold_start(plays, songs.split != "train", test_user_fraction=0.2, seed=0)
  assert len(split.cold_songs) == n - info.num_examples["train"] and len(split.test_users) > 20
