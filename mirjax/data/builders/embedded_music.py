"""TFDS builder of mirjax's default dataset: music21 corpus pieces rendered with General MIDI.

Each example is one rendering variant of a segment of a real composition (instruments,
drums, tempo, loudness, solo or ensemble) with the multi-hot tags of what was rendered.
Nothing is downloaded. Splits are by piece (about 80/10/10) and every byte is a
function of the config's seed. Without TensorFlow only `file_format="array_record"`
and `Tensor` features work, so audio is an int16 `Tensor` at 16 kHz.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from mirjax.data import parallel
from mirjax.data.builders import pcm_feature
from mirjax.data.embedded import clips, corpus, render, tags
from mirjax.errors import DataError

NAME = "mirjax_embedded_music"
SPLITS = corpus.SPLITS


@dataclasses.dataclass(eq=False)
class EmbeddedMusicConfig(tfds.core.BuilderConfig):
  """Size of the dataset.

  Attributes:
    num_pieces: pieces drawn from `corpus.piece_pool()` (before skipping failures).
    clips_per_piece: rendering variants per piece.
    clip_seconds: clip length in seconds at `render.SAMPLE_RATE`.
    seed: seed of the piece draw, the split and every rendering choice.
    workers: processes that parse and render pieces.
  """
  num_pieces: int = 280
  clips_per_piece: int = 4
  clip_seconds: float = 4.0
  seed: int = 0
  workers: int = 0  # 0: parallel.default_workers() when the build runs

  @property
  def clip_samples(self) -> int:
    return int(round(self.clip_seconds * render.SAMPLE_RATE))


class EmbeddedMusic(tfds.core.GeneratorBasedBuilder):
  """Multi-part music21 pieces rendered to 16 kHz audio, multi-label tagged."""

  name = NAME  # TFDS would otherwise derive "embedded_music" from the class name
  VERSION = tfds.core.Version("1.0.1")
  RELEASE_NOTES = {"1.0.0": "First release.",
                   "1.0.1": "Audio stored as raw int16 bytes, not an int64 list: the same "
                            "examples, several times faster to write and to read."}
  BUILDER_CONFIGS = [
      EmbeddedMusicConfig(name="default", description="~1,100 clips of 4 s."),
      EmbeddedMusicConfig(name="smoke", description="64 clips of 3 s, for tests.",
                          num_pieces=16, clip_seconds=3.0),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def __init__(self, *, file_format: str = "array_record", **kwargs):
    """Like any TFDS builder, but stored as array_record (tfrecord needs TensorFlow)."""
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            # int16 PCM, mono, 16 kHz; divide by 32768 for [-1, 1).
            "audio": pcm_feature(cfg.clip_samples),
            # 1 where the tag holds, over `tags.TAGS` (also metadata["tag_names"]).
            "tags": tfds.features.Tensor(shape=(len(tags.TAGS),), dtype=np.uint8),
            # index into metadata["piece_paths"] (music21 corpus paths).
            "piece": tfds.features.Tensor(shape=(), dtype=np.int32),
        }),
        supervised_keys=("audio", "tags"),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    cfg = self.builder_config
    pool = corpus.piece_pool()
    good, self._skipped, chunks = corpus.draw(cfg.num_pieces, cfg.seed, cfg.workers, f"{NAME}/{cfg.name}: parsing")
    self._splits_done = 0
    self.info.metadata.update(
        tag_names=list(tags.TAGS), sample_rate=render.SAMPLE_RATE,
        clip_samples=cfg.clip_samples, seed=cfg.seed,
        piece_paths={str(i): pool[i] for i, _ in good},
        split_pieces={s: sorted(int(good[k][0]) for k in chunks[s]) for s in SPLITS})
    gens = {}
    for k, s in enumerate(SPLITS):
      pieces = [good[j] for j in chunks[s]]
      plan = clips.plan(pieces, cfg.clips_per_piece, cfg.clip_seconds, cfg.seed, split=k)
      gens[s] = self._generate_examples(s, pieces, plan)
    return gens

  def _generate_examples(self, split, pieces, plan):
    cfg = self.builder_config
    jobs = [(notes, [c for c in plan if c.piece == i], cfg.clip_samples) for i, notes in pieces]
    multi_hot = []
    results = parallel.imap(clips.render_piece, jobs, cfg.workers,
                            f"{NAME}/{cfg.name}: rendering {split}")
    for (_, piece_clips, _), result in zip(jobs, results):
      if isinstance(result, str):
        self._skipped[corpus.piece_pool()[piece_clips[0].piece]] = result
        continue
      for c, audio in zip(piece_clips, result):
        multi_hot.append(c.tags())
        yield f"{c.piece:04d}-{c.index}", {"audio": audio, "tags": multi_hot[-1],
                                            "piece": np.int32(c.piece)}
    _check_tags(split, np.array(multi_hot))
    self.info.metadata.update(skipped=len(self._skipped), skipped_pieces=dict(self._skipped))
    self._splits_done += 1
    if self._splits_done == len(SPLITS):  # report once every split has rendered
      from tqdm import tqdm  # pylint: disable=import-outside-toplevel
      tqdm.write(f"{NAME}/{cfg.name}: skipped {len(self._skipped)} of {cfg.num_pieces} pieces"
                 + "".join(f"\n  {p}: {why}" for p, why in sorted(self._skipped.items())))


def _check_tags(split: str, multi_hot: np.ndarray):
  """Raise unless every tag has a positive and a negative clip in `split`."""
  pos = multi_hot.sum(axis=0)
  bad = [t for t, p in zip(tags.TAGS, pos) if p == 0 or p == len(multi_hot)]
  if bad:
    raise DataError(f"split {split!r}: tags without both positives and negatives: {bad}")
