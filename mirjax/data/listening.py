"""Listening data for content-based recommendation: how often each user played each song.

van den Oord, Dieleman and Schrauwen, "Deep content-based music recommendation" (NIPS 2013)
factorise the play counts of the Echo Nest Taste Profile subset of the Million Song Dataset
(48M `user<TAB>song<TAB>count` triplets) by weighted matrix factorisation, then predict song
factors from audio so that songs nobody has played (cold-start songs) can be recommended.

  plays = read_taste_profile("train_triplets.txt")   # the real data, if you have it, or
  songs = embedded_song_attributes("default")        # the embedded clips with SIMULATED users:
  plays = simulate(songs.values, n_users=5000, seed=0, song_ids=songs.song_ids)
  split = split_cold_start(plays, songs.split != "train", test_user_fraction=0.2, seed=0)

Every `Plays` a function here returns keeps the user and song index of its input (one global
index space), so a row of `to_csr()` is the same user and a column the same song everywhere.
"""
import dataclasses
import gzip
import os
import zlib

import numpy as np
import scipy.sparse

from mirjax.data import embedded
from mirjax.errors import ConfigError, DataError

TRIPLET = "user<TAB>song<TAB>count"
CHUNK_BYTES = 1 << 24  # text parsed at once: memory stays bounded whatever the file's size
MAX_FIELD_BYTES = 256  # Taste Profile ids are 40 (user) and 18 (song) bytes
MAX_COUNT_DIGITS = 9  # counts stay below 1e9, inside int32


def _ids(values, name: str) -> np.ndarray:
  ids = np.asarray(values, dtype=str).reshape(-1)
  unique, counts = np.unique(ids, return_counts=True)
  if unique.size != ids.size:
    raise DataError(f"{name} repeats the id {str(unique[counts > 1][0])!r}: each index needs its own id")
  return ids


@dataclasses.dataclass(frozen=True, eq=False)
class Plays:
  """Implicit feedback: how often each user played each song, one entry per (user, song).

  The constructor sums the counts of repeated (user, song) entries and sorts entries by
  user, then song, so two `Plays` of the same feedback are equal (`==`). Arrays are read-only.

  Attributes:
    users: int32 (n_plays,) user index of each entry, into `user_ids`.
    songs: int32 (n_plays,) song index of each entry, into `song_ids`.
    counts: int32 (n_plays,) play count, > 0.
    user_ids: str (n_users,) id of each user index (users without plays may be listed).
    song_ids: str (n_songs,) id of each song index (songs without plays may be listed).
  """
  users: np.ndarray
  songs: np.ndarray
  counts: np.ndarray
  user_ids: np.ndarray
  song_ids: np.ndarray

  def __post_init__(self):
    user_ids, song_ids = _ids(self.user_ids, "user_ids"), _ids(self.song_ids, "song_ids")
    users, songs, counts = (np.asarray(a).reshape(-1) for a in (self.users, self.songs, self.counts))
    if not users.size == songs.size == counts.size:
      raise DataError(f"users, songs and counts differ in length ({users.size}, {songs.size}, {counts.size})")
    for name, index, n in (("users", users, user_ids.size), ("songs", songs, song_ids.size)):
      if index.size and (index.dtype.kind not in "iu" or index.min() < 0 or index.max() >= n):
        raise DataError(f"{name} must be integer indices in [0, {n}), got {index.dtype} in "
                        f"[{index.min()}, {index.max()}]")
    if counts.size and (counts.dtype.kind not in "iuf" or np.any(counts <= 0)
                        or np.any(counts != np.round(counts)) or np.max(counts) >= 2**31):
      raise DataError("play counts must be positive integers below 2**31")
    key = users.astype(np.int64) * max(song_ids.size, 1) + songs
    counts = counts.astype(np.int64)
    if np.any(key[1:] <= key[:-1]):  # not yet sorted and unique
      order = np.argsort(key, kind="stable")
      key, counts = key[order], counts[order]
      first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
      key, counts = key[first], np.add.reduceat(counts, first)
      if counts.size and counts.max() >= 2**31:
        raise DataError("a summed play count reaches 2**31, beyond int32")
    users, songs = np.divmod(key, max(song_ids.size, 1))
    for name, value in (("users", users.astype(np.int32)), ("songs", songs.astype(np.int32)),
                        ("counts", counts.astype(np.int32)), ("user_ids", user_ids),
                        ("song_ids", song_ids)):
      value.flags.writeable = False
      object.__setattr__(self, name, value)

  def __eq__(self, other):
    if not isinstance(other, Plays):
      return NotImplemented
    return all(np.array_equal(getattr(self, f.name), getattr(other, f.name))
               for f in dataclasses.fields(self))

  __hash__ = None  # array-valued: compare with ==, not usable as a dict key

  @property
  def n_users(self) -> int:
    """Number of user indices (rows of `to_csr()`), with or without plays."""
    return int(self.user_ids.size)

  @property
  def n_songs(self) -> int:
    """Number of song indices (columns of `to_csr()`), with or without plays."""
    return int(self.song_ids.size)

  @property
  def n_plays(self) -> int:
    """Number of (user, song) entries, not the sum of counts."""
    return int(self.counts.size)

  def to_csr(self) -> scipy.sparse.csr_matrix:
    """float32 (n_users, n_songs) sparse matrix of play counts."""
    return scipy.sparse.csr_matrix((self.counts.astype(np.float32), (self.users, self.songs)),
                                   shape=(self.n_users, self.n_songs))

  def select(self, keep: np.ndarray) -> "Plays":
    """The entries where the bool (n_plays,) `keep` is True, with the same user and song ids."""
    return Plays(self.users[keep], self.songs[keep], self.counts[keep], self.user_ids, self.song_ids)


# --- the Taste Profile text format ----------------------------------------------------------

def _open(path: str, mode: str, gz: bool, **kwargs):
  return (gzip.open if gz else open)(path, mode, **kwargs)


def _fields(buf: np.ndarray, starts: np.ndarray, widths: np.ndarray) -> np.ndarray:
  """Bytes array (n,) of buf[starts[i]:starts[i] + widths[i]], gathered without a Python loop."""
  w = max(int(widths.max(initial=0)), 1)
  offsets = np.arange(w, dtype=np.int32)
  index = np.minimum(starts[:, None] + offsets, buf.size - 1)
  out = np.where(offsets < widths[:, None], buf[index], 0).astype(np.uint8)
  return np.ascontiguousarray(out).view(f"S{w}").reshape(-1)  # S drops the trailing zeros


def _index(tokens: np.ndarray, table: dict) -> np.ndarray:
  """Index of each id in `table` (id -> index), adding the ids it lacks."""
  unique, inverse = np.unique(tokens, return_inverse=True)
  known = np.fromiter((table.setdefault(t, len(table)) for t in unique.tolist()), np.int64, unique.size)
  return known[inverse]


def _parse(text: bytes, first_line: int, path: str, users: dict, songs: dict):
  """(user index, song index, count) arrays of the lines of `text`, which ends with a newline."""
  buf = np.frombuffer(text, np.uint8)
  ends = np.flatnonzero(buf == 10).astype(np.int32)
  starts = np.r_[np.int32(0), ends[:-1] + 1].astype(np.int32)
  lines = first_line + np.arange(ends.size)
  full = ends > starts  # blank lines are skipped
  starts, ends, lines = starts[full], ends[full], lines[full]
  tabs = np.flatnonzero(buf == 9).astype(np.int32)
  first = np.searchsorted(tabs, starts)
  n_tabs = np.searchsorted(tabs, ends) - first
  def fail(k, what):
    line = text[starts[k]:ends[k]][:80].decode("utf-8", "replace")
    raise DataError(f"{path}, line {lines[k]}: {what}; every line must be {TRIPLET} "
                    f"(e.g. 'b80344d0...\\tSOAKIMP12A8C130995\\t1'), found {line!r}")
  bad = np.flatnonzero(n_tabs != 2)
  if bad.size:
    fail(bad[0], f"expected 3 tab-separated fields, found {n_tabs[bad[0]] + 1}")
  tab1, tab2 = tabs[first], tabs[first + 1]
  widths = np.stack([tab1 - starts, tab2 - tab1 - 1, ends - tab2 - 1])
  bad = np.flatnonzero((widths == 0).any(0))
  if bad.size:
    fail(bad[0], "a field is empty")
  bad = np.flatnonzero((widths[:2] > MAX_FIELD_BYTES).any(0))
  if bad.size:
    fail(bad[0], f"an id is longer than {MAX_FIELD_BYTES} bytes")
  count_text = _fields(buf, tab2 + 1, np.minimum(widths[2], MAX_COUNT_DIGITS + 1))
  digits = np.strings.isdigit(count_text) & (widths[2] <= MAX_COUNT_DIGITS)
  counts = np.where(digits, count_text, b"0").astype(np.int64)
  bad = np.flatnonzero(counts <= 0)
  if bad.size:
    fail(bad[0], f"the play count must be a positive integer below 10**{MAX_COUNT_DIGITS}")
  return (_index(_fields(buf, starts, widths[0]), users),
          _index(_fields(buf, tab1 + 1, widths[1]), songs), counts)


def _sorted_ids(table: dict, index: np.ndarray, path: str):
  """Ids in sorted order (whatever order the file had) and `index` renumbered to match."""
  ids = np.array(list(table), dtype=bytes)
  order = np.argsort(ids, kind="stable")
  rank = np.empty(order.size, np.int64)
  rank[order] = np.arange(order.size)
  try:
    return np.strings.decode(ids[order], "utf-8"), rank[index]
  except UnicodeDecodeError as e:
    raise DataError(f"{path} holds an id that is not UTF-8 text ({e})") from e


def read_taste_profile(path: str, chunk_bytes: int = CHUNK_BYTES) -> Plays:
  """Plays of a Taste Profile triplet file: one `user<TAB>song<TAB>count` line per pair.

  The Echo Nest Taste Profile subset (train_triplets.txt, 48,373,586 lines, 2.9 GB) reads
  in chunks of `chunk_bytes` (default 16 MiB), parsed with numpy, so memory holds the
  indices (12 bytes a line) and the ids, not a Python object per line. A name ending in
  ".gz" is read through gzip. Blank lines and a "\\r\\n" line end are accepted; repeated
  (user, song) lines are summed. User and song ids are numbered in sorted order.

  Raises:
    DataError: the file is missing or empty, a line lacks three tab-separated fields (the
      message gives its number), or a count is not a positive integer.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DataError(f"{path} does not exist: pass a Taste Profile triplet file ({TRIPLET} per "
                    "line), e.g. train_triplets.txt of http://millionsongdataset.com/tasteprofile/")
  users, songs, parts = {}, {}, []
  line, rest = 1, b""
  try:
    with _open(path, "rb", path.endswith(".gz")) as f:
      while True:
        block = f.read(chunk_bytes)
        text = (rest + block).replace(b"\r\n", b"\n")
        cut = text.rfind(b"\n") + 1 if block else len(text)
        text, rest = text[:cut], text[cut:]
        if len(rest) > max(chunk_bytes, 1 << 20):
          raise DataError(f"{path}, line {line}: no line end in {len(rest)} bytes; every line "
                          f"must be {TRIPLET}")
        if text:
          parts.append(_parse(text if text.endswith(b"\n") else text + b"\n", line, path, users, songs))
          line += text.count(b"\n")
        if not block:
          break
  except (gzip.BadGzipFile, EOFError, zlib.error) as e:
    raise DataError(f"{path} is not a complete gzip file ({e}); unpack it or download it again") from e
  if not users:
    raise DataError(f"{path} is empty: a Taste Profile file holds one {TRIPLET} line per "
                    "(user, song) pair")
  user_ids, user_index = _sorted_ids(users, np.concatenate([p[0] for p in parts]), path)
  song_ids, song_index = _sorted_ids(songs, np.concatenate([p[1] for p in parts]), path)
  return Plays(user_index, song_index, np.concatenate([p[2] for p in parts]), user_ids, song_ids)


def write_taste_profile(plays: Plays, path: str) -> None:
  """Write `plays` as Taste Profile triplets (".gz": gzip), sorted by user, then song.

  Users and songs without plays cannot be written in this format: `read_taste_profile` of
  the file gives back only those with plays. The file appears whole or not at all.
  """
  path = os.fspath(path)
  for name, ids in (("user", plays.user_ids), ("song", plays.song_ids)):
    bad = [i for i in ids.tolist() if "\t" in i or "\n" in i or "\r" in i or not i]
    if bad:
      raise DataError(f"{name} id {bad[0]!r} cannot be written as {TRIPLET}: ids must be "
                      "non-empty and hold no tab or line end")
  tmp = path + ".tmp"
  with _open(tmp, "wt", path.endswith(".gz"), encoding="utf-8", newline="\n") as f:
    step = 1 << 16  # lines formatted at once
    for lo in range(0, plays.n_plays, step):
      f.writelines(f"{u}\t{s}\t{c}\n" for u, s, c in zip(
          plays.user_ids[plays.users[lo:lo + step]].tolist(),
          plays.song_ids[plays.songs[lo:lo + step]].tolist(), plays.counts[lo:lo + step].tolist()))
  os.replace(tmp, path)


# --- simulated listeners --------------------------------------------------------------------

def _require(ok: bool, message: str):
  if not ok:
    raise ConfigError(message)


def simulate(song_attributes: np.ndarray, n_users: int, seed: int = 0, *, song_ids=None,
             likes_per_user: int = 3, taste_background: float = 0.1, beta: float = 5.0,
             popularity_sigma: float = 1.5, mean_songs_per_user: float = 20.0,
             activity_sigma: float = 1.0, min_songs_per_user: int = 5, count_mean: float = 2.0,
             count_sigma: float = 1.0, count_beta: float = 1.0) -> Plays:
  """SIMULATED listening histories of `n_users` users over songs described by attributes.

  No one listened: the plays are drawn from this model, deterministic for `seed`.
    taste     each user likes `likes_per_user` (default 3) attributes, drawn uniformly from
              those that vary across songs, with Dirichlet(1) weights summing to
              1 - taste_background, plus taste_background (0.1) spread as Dirichlet(1) over all.
    affinity  a(u, s) = taste_u . song_attributes_s: in [0, 1] for 0/1 attributes (the share
              of the user's taste the song has).
    popularity  log p_s ~ Normal(0, popularity_sigma=1.5): log-normal, heavy-tailed (the top
              10% of songs hold ~60% of the popularity mass at 1.5).
    activity  distinct songs per user ~ round(LogNormal) with mean mean_songs_per_user (20)
              and log-sd activity_sigma (1.0), clipped to [min_songs_per_user (5), n_songs // 2].
    choice    songs drawn without replacement with probability proportional to
              p_s * exp(beta * a(u, s)), beta = 5 (Gumbel top-k sampling).
    counts    Geometric (support 1, 2, ...) with mean max(1, m), m = count_mean (2) *
              exp(count_sigma (1) * z - count_sigma**2 / 2 + count_beta (1) * a(u, s)),
              z ~ Normal(0, 1) per play: heavy-tailed, higher for songs the user likes more.
  So songs sharing liked attributes are played by the same users more than chance, which a
  factorisation can learn and a content model can predict from the attributes' sound.

  Args:
    song_attributes: float (n_songs, n_attributes), values in [0, 1] (multi-hot tags,
      one-hot labels); other scales work but change what `beta` means.
    n_users: number of simulated users; user ids are "user0000", "user0001", ...
    seed: everything random comes from `np.random.default_rng(seed)`.
    song_ids: str (n_songs,); default "song0000", "song0001", ...

  Returns:
    `Plays` with n_users users (each with at least one play) and n_songs songs.
  """
  x = np.asarray(song_attributes, np.float64)
  if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1 or not np.all(np.isfinite(x)):
    raise DataError(f"song_attributes must be a finite (n_songs >= 2, n_attributes >= 1) "
                    f"array, got shape {x.shape}")
  n_songs, n_attributes = x.shape
  _require(int(n_users) >= 1 and likes_per_user >= 1 and min_songs_per_user >= 1,
           "n_users, likes_per_user and min_songs_per_user must be at least 1")
  _require(0.0 <= taste_background <= 1.0, f"taste_background must be in [0, 1], got {taste_background}")
  _require(mean_songs_per_user > 0 and count_mean >= 1, "mean_songs_per_user must be > 0, count_mean >= 1")
  _require(min(popularity_sigma, activity_sigma, count_sigma) >= 0, "sigmas must be >= 0")
  n_users = int(n_users)
  rng = np.random.default_rng(seed)
  varying = np.flatnonzero(x.max(0) > x.min(0))
  pool = varying if varying.size else np.arange(n_attributes)
  k = min(int(likes_per_user), pool.size)
  liked = pool[np.argsort(rng.random((n_users, pool.size)), axis=1)[:, :k]]
  taste = taste_background * rng.dirichlet(np.ones(n_attributes), n_users)
  rows = np.arange(n_users)[:, None]
  taste[rows, liked] += (1.0 - taste_background) * rng.dirichlet(np.ones(k), n_users)
  log_popularity = popularity_sigma * rng.standard_normal(n_songs)
  cap = max(1, n_songs // 2)
  mu = np.log(mean_songs_per_user) - activity_sigma ** 2 / 2  # the log-normal's mean is then the mean
  n_picks = np.clip(np.rint(rng.lognormal(mu, activity_sigma, n_users)),
                    min(min_songs_per_user, cap), cap).astype(np.int64)
  users, songs, counts = [], [], []
  step = max(1, (1 << 22) // n_songs)  # users per block: a block's score matrix stays ~32 MB
  for lo in range(0, n_users, step):
    affinity = taste[lo:lo + step] @ x.T
    keys = log_popularity + beta * affinity + rng.gumbel(size=affinity.shape)
    ranked = np.argsort(-keys, axis=1, kind="stable")
    chosen = np.arange(n_songs) < n_picks[lo:lo + step, None]  # the first n_picks of each row
    user = np.repeat(np.arange(lo, lo + affinity.shape[0]), n_picks[lo:lo + step])
    song = ranked[chosen]
    a = affinity[user - lo, song]
    mean = count_mean * np.exp(count_sigma * rng.standard_normal(a.size) - count_sigma ** 2 / 2
                               + count_beta * a)
    users.append(user)
    songs.append(song)
    counts.append(rng.geometric(1.0 / np.maximum(mean, 1.0)))
  width = len(str(max(n_users, n_songs) - 1))
  user_ids = [f"user{u:0{width}d}" for u in range(n_users)]
  song_ids = [f"song{s:0{width}d}" for s in range(n_songs)] if song_ids is None else song_ids
  if len(song_ids) != n_songs:
    raise DataError(f"{len(song_ids)} song_ids for {n_songs} rows of song_attributes")
  counts = np.minimum(np.concatenate(counts), 2**31 - 1)
  return Plays(np.concatenate(users), np.concatenate(songs), counts, user_ids, song_ids)


# --- the cold-start protocol ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class ColdStartSplit:
  """Plays split for cold-start evaluation; every `Plays` keeps the input's global indices.

  Attributes:
    train: train users' plays on warm songs (rows of test users and columns of cold songs
      are empty: no training user played a cold song).
    test_history: test users' plays on warm songs, to fold in their user factors.
    test_target: test users' plays on cold songs, the ground truth a ranking of cold songs
      is scored against.
    discarded: the rest: train users' plays on cold songs and all plays of dropped users.
    warm_songs, cold_songs: int64 song indices.
    train_users, test_users, dropped_users: int64 user indices; they partition all users.
  """
  train: Plays
  test_history: Plays
  test_target: Plays
  discarded: Plays
  warm_songs: np.ndarray
  cold_songs: np.ndarray
  train_users: np.ndarray
  test_users: np.ndarray
  dropped_users: np.ndarray


def split_cold_start(plays: Plays, cold_songs: np.ndarray, test_user_fraction: float = 0.2,
                     seed: int = 0) -> ColdStartSplit:
  """The cold-start protocol: hold out songs and users, train on the rest.

  Users are drawn as test users with `np.random.default_rng(seed)` (round(fraction *
  n_users) of them), the rest are train users. A drawn test user with no play on a warm song
  (nothing to fold in) or none on a cold song (nothing to score) is dropped: neither train
  nor test user, their plays discarded.

  Args:
    plays: all listening data.
    cold_songs: bool (n_songs,) mask, or song indices, of the cold-start songs (e.g. the
      embedded dataset's valid and test clips); all other songs are warm.
    test_user_fraction: share of users drawn as test users, in (0, 1); default 0.2.
    seed: seed of the user draw.

  Raises:
    DataError: no cold or no warm song, or no test user has both warm and cold plays.
  """
  _require(0.0 < test_user_fraction < 1.0, f"test_user_fraction must be in (0, 1), got {test_user_fraction}")
  cold = np.asarray(cold_songs)
  if cold.dtype == bool:
    if cold.shape != (plays.n_songs,):
      raise DataError(f"cold_songs mask has shape {cold.shape}, the plays have {plays.n_songs} songs")
  else:
    if cold.size and (cold.dtype.kind not in "iu" or cold.min() < 0 or cold.max() >= plays.n_songs):
      raise DataError(f"cold_songs must be a bool mask or indices in [0, {plays.n_songs})")
    cold = np.isin(np.arange(plays.n_songs), cold)
  if cold.all() or not cold.any():
    raise DataError(f"{int(cold.sum())} of {plays.n_songs} songs are cold: a split needs both "
                    "cold and warm songs")
  rng = np.random.default_rng(seed)
  test = np.zeros(plays.n_users, bool)
  test[rng.permutation(plays.n_users)[:int(round(test_user_fraction * plays.n_users))]] = True
  cold_play = cold[plays.songs]
  has_warm = np.bincount(plays.users[~cold_play], minlength=plays.n_users) > 0
  has_cold = np.bincount(plays.users[cold_play], minlength=plays.n_users) > 0
  dropped = test & ~(has_warm & has_cold)
  test &= ~dropped
  if not test.any():
    raise DataError(f"no test user among {plays.n_users} has plays on both warm and cold songs: "
                    "simulate more users, raise test_user_fraction or hold out more songs")
  test_play, train_play = test[plays.users], ~test[plays.users] & ~dropped[plays.users]
  return ColdStartSplit(
      train=plays.select(train_play & ~cold_play),
      test_history=plays.select(test_play & ~cold_play),
      test_target=plays.select(test_play & cold_play),
      discarded=plays.select(~(train_play & ~cold_play) & ~test_play),
      warm_songs=np.flatnonzero(~cold), cold_songs=np.flatnonzero(cold),
      train_users=np.flatnonzero(~test & ~dropped), test_users=np.flatnonzero(test),
      dropped_users=np.flatnonzero(dropped))


# --- songs of the embedded dataset ----------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class SongAttributes:
  """The embedded clips as songs for `simulate`.

  Attributes:
    values: float32 (n_songs, n_attributes) of 0/1: the clip's tags, then one-hot
      `embedded.LABELS` classes (composer, tempo, drums, texture).
    names: name of each column: "tag:piano", ..., "composer:bach", ..., "texture:solo", ...
    song_ids: str (n_songs,) "<split>/<example index>", e.g. "train/0".
    split: str (n_songs,) "train", "valid" or "test": the clip's dataset split.
    piece: int32 (n_songs,) the clip's piece (splits never share a piece).
  """
  values: np.ndarray
  names: tuple
  song_ids: np.ndarray
  split: np.ndarray
  piece: np.ndarray


def embedded_song_attributes(config_name: str = "default", data_dir: str | None = None) -> SongAttributes:
  """Every clip of the embedded dataset (`embedded.load(config_name, data_dir)`) as a song.

  The label classes are those `embedded.load(..., label=...)` gives: this calls its
  sources' `label_of` on each example, so there is one definition of every label.
  """
  sources, info = embedded.load(config_name, data_dir=data_dir)
  label_of = {name: embedded.load(config_name, data_dir=data_dir, label=name)[0]["train"].label_of
              for name in embedded.LABELS}
  rows, ids, splits, pieces = [], [], [], []
  for split, source in sources.items():
    for i in range(len(source)):
      example = source[i]
      classes = [np.eye(len(c))[label_of[name](example)] for name, c in embedded.LABELS.items()]
      rows.append(np.concatenate([np.asarray(example["tags"], np.float32), *classes]))
      ids.append(f"{split}/{i}")
      splits.append(split)
      pieces.append(int(example["piece"]))
  names = tuple(f"tag:{t}" for t in info.tag_names) + tuple(
      f"{name}:{c}" for name, classes in embedded.LABELS.items() for c in classes)
  return SongAttributes(values=np.asarray(rows, np.float32), names=names, song_ids=np.array(ids),
                        split=np.array(splits), piece=np.asarray(pieces, np.int32))
