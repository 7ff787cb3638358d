"""mirjax's default dataset, made on this machine from the music21 corpus (no download).

  sources, info = mirjax.data.embedded.load("smoke")
  example = sources["train"][0]  # {"audio": int16 (clip_samples,), "tags": uint8 (19,), "piece": int}

The first call builds the TFDS dataset `mirjax_embedded_music/<config>` (configs
"default": ~1,100 clips of 4 s; "smoke": 64 clips of 3 s) and later calls read the
cache. Importing this package imports neither TFDS nor TensorFlow.
"""
import dataclasses

from mirjax.data import default_data_dir

__all__ = ["Info", "load"]


@dataclasses.dataclass(frozen=True)
class Info:
  """What a model needs to know about the dataset.

  Attributes:
    name: what results call it, "embedded/<config>".
    tag_names: name of each position of the `tags` vector.
    sample_rate: Hz of `audio` (16,000).
    clip_samples: length of every `audio` array, in samples.
    num_examples: clips per split ("train", "valid", "test").
    skipped: pieces that failed to parse or render and were left out.
  """
  name: str
  tag_names: tuple[str, ...]
  sample_rate: int
  clip_samples: int
  num_examples: dict[str, int]
  skipped: int


def load(config_name: str = "default", data_dir: str | None = None):
  """Build (first call) or open the embedded dataset.

  Args:
    config_name: "default" or "smoke".
    data_dir: TFDS data dir; default `default_data_dir()`.

  Returns:
    (sources, info): sources maps "train"/"valid"/"test" to a random-access source
    (`len(src)`, `src[i]` -> dict of numpy arrays `audio`, `tags`, `piece`), and `info`
    is an `Info`.
  """
  # pylint: disable-next=import-outside-toplevel
  from mirjax.data.builders.embedded_music import EmbeddedMusic, SPLITS
  builder = EmbeddedMusic(config=config_name, data_dir=data_dir or default_data_dir())
  builder.download_and_prepare()  # a no-op when the dataset is already there
  meta = builder.info.metadata
  info = Info(
      name=f"embedded/{config_name}", tag_names=tuple(meta["tag_names"]),
      sample_rate=int(meta["sample_rate"]),
      clip_samples=int(meta["clip_samples"]),
      num_examples={s: int(builder.info.splits[s].num_examples) for s in SPLITS},
      skipped=int(meta["skipped"]))
  return {s: builder.as_data_source(s) for s in SPLITS}, info
