"""mirjax's default dataset, made on this machine from the music21 corpus (no download).

  sources, info = mirjax.data.embedded.load("smoke")
  example = sources["train"][0]  # {"audio": int16 (clip_samples,), "tags": uint8 (19,), "piece": int}

The first call builds the TFDS dataset `mirjax_embedded_music/<config>` (configs
"default": ~1,100 clips of 4 s; "smoke": 64 clips of 3 s) and later calls read the
cache. Importing this package imports neither TFDS nor TensorFlow.

Besides its tags, every clip has single-label classes derived from what was rendered
(`load(..., label=...)` adds them as `label`): see `LABELS`.
"""
import numpy as np

from mirjax.data import default_data_dir
from mirjax.data.info import Info
from mirjax.errors import DataError

__all__ = ["Info", "LABELS", "load"]

# Classification tasks on the embedded clips: name -> class names.
LABELS = {
    "composer": ("bach", "monteverdi", "palestrina", "trecento"),  # the piece's corpus folder
    "tempo": ("slow", "medium", "fast"),  # rendered rate class (tags "slow" / "fast" / neither)
    "drums": ("none", "backbeat", "cymbals"),  # drum pattern (tags "drums" + "beat" / "drums" / none)
    # one part ("solo" tag); several parts, all instruments of one family; several families
    "texture": ("solo", "one_family", "mixed_families"),
}

# Instrument families of the `texture` label: every instrument tag is in exactly one.
FAMILIES = {
    "keyboard": ("piano", "harpsichord", "organ"),
    "plucked": ("guitar", "harp", "sitar"),
    "bowed": ("violin", "cello", "strings"),
    "wind_voice": ("flute", "choir"),
    "synth": ("synth",),
}


class LabelledSource:
  """A source whose examples gain `label` (int32), a function of the example and its piece."""

  def __init__(self, source, label_of):
    self.source, self.label_of = source, label_of

  def __len__(self):
    return len(self.source)

  def __getitem__(self, i):
    ex = dict(self.source[i])
    ex["label"] = np.int32(self.label_of(ex))
    return ex


def _label_fn(label: str, tag_names, piece_paths):
  tag = {t: k for k, t in enumerate(tag_names)}
  if label == "composer":
    composers = LABELS["composer"]
    return lambda ex: composers.index(piece_paths[str(int(ex["piece"]))].split("/")[0])
  if label == "tempo":
    return lambda ex: 2 if ex["tags"][tag["fast"]] else (0 if ex["tags"][tag["slow"]] else 1)
  if label == "drums":
    return lambda ex: 0 if not ex["tags"][tag["drums"]] else (1 if ex["tags"][tag["beat"]] else 2)
  if label == "texture":
    # "strings" is also implied by violin and cello, which the bowed family absorbs.
    family = np.zeros((len(FAMILIES), len(tag_names)), np.uint8)
    for f, members in enumerate(FAMILIES.values()):
      family[f, [tag[m] for m in members]] = 1
    def texture(ex):
      if ex["tags"][tag["solo"]]:
        return 0
      return 1 if int(np.sum(family @ ex["tags"] > 0)) == 1 else 2
    return texture
  raise DataError(f"unknown embedded label {label!r}; choose one of {sorted(LABELS)}")


def load(config_name: str = "default", data_dir: str | None = None, label: str | None = None):
  """Build (first call) or open the embedded dataset.

  Args:
    config_name: "default" or "smoke".
    data_dir: TFDS data dir; default `default_data_dir()`.
    label: None, or a key of `LABELS`: examples then also hold that class as `label`.

  Returns:
    (sources, info): sources maps "train"/"valid"/"test" to a random-access source
    (`len(src)`, `src[i]` -> dict of numpy arrays `audio`, `tags`, `piece`[, `label`]), and
    `info` is a `mirjax.data.info.Info`.
  """
  if label and label not in LABELS:
    raise DataError(f"unknown embedded label {label!r}; choose one of {sorted(LABELS)}")
  # pylint: disable-next=import-outside-toplevel
  from mirjax.data.builders.embedded_music import EmbeddedMusic, SPLITS
  from mirjax.data.prepare import prepared  # pylint: disable=import-outside-toplevel
  # a no-op when the dataset is already there; one build at a time per data dir
  builder = prepared(lambda: EmbeddedMusic(config=config_name, data_dir=data_dir or default_data_dir()))
  meta = builder.info.metadata
  info = Info(
      name=f"embedded/{config_name}" + (f"/{label}" if label else ""),
      tag_names=tuple(meta["tag_names"]), sample_rate=int(meta["sample_rate"]),
      clip_samples=int(meta["clip_samples"]),
      num_examples={s: int(builder.info.splits[s].num_examples) for s in SPLITS},
      skipped=int(meta["skipped"]), class_names=LABELS[label] if label else ())
  sources = {s: builder.as_data_source(s) for s in SPLITS}
  if label:
    label_of = _label_fn(label, info.tag_names, meta["piece_paths"])
    sources = {s: LabelledSource(src, label_of) for s, src in sources.items()}
  return sources, info
