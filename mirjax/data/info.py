"""`Info`: what every dataset loader says about the dataset it opened (one type for all)."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Info:
  """What a dataset holds, as its loader (mirjax.data.pipeline.DATASETS) found it.

  Attributes:
    name: what results call it, with its variant: "embedded/default", "mtat/clean",
      "gtzan/filtered", "folder/<hash of the folder's settings>", ...
    sample_rate: audio rate in Hz.
    num_examples: examples per split; splits without one are absent.
    tag_names: multi-label datasets: `tags[i]` of an example is tag_names[i] (else empty).
    class_names: single-label datasets (or an embedded `label`): `label` indexes these.
    clip_samples: samples of every example's `audio` where all have one length, else 0.
    skipped: files (or embedded pieces) left out because they could not be read.
    skipped_files: path -> why it could not be read (relative to the dataset's folder).
    too_short_files: readable files too short to give an example.
    truncated_files: path -> why: files cut short, used as far as they go.
    untagged_files: files the annotations give no tag (examples negative for every tag).
    files: a folder dataset's files in tags.csv order (an example's `file_index`).
    feature_dim: a feature dataset's width D (its examples' `features`), else 0.
    target_dim: a regression dataset's target width (its examples' `factors`), else 0.
    vocab_size: a token dataset's vocabulary (its examples' `tokens`), else 0.
  """
  name: str
  sample_rate: int
  num_examples: dict = dataclasses.field(default_factory=dict)
  tag_names: tuple = ()
  class_names: tuple = ()
  clip_samples: int = 0
  skipped: int = 0
  skipped_files: dict = dataclasses.field(default_factory=dict)
  too_short_files: tuple = ()
  truncated_files: dict = dataclasses.field(default_factory=dict)
  untagged_files: tuple = ()
  files: tuple = ()
  feature_dim: int = 0
  target_dim: int = 0
  vocab_size: int = 0

  @classmethod
  def from_meta(cls, meta: dict) -> "Info":
    """The Info a checkpoint's `meta` (`to_meta`) keeps: enough to rebuild the model."""
    return cls(name=meta["dataset"], sample_rate=int(meta["sample_rate"]),
               tag_names=tuple(meta.get("tag_names", ())),
               class_names=tuple(meta.get("class_names", ())),
               feature_dim=int(meta.get("feature_dim", 0)),
               target_dim=int(meta.get("target_dim", 0)),
               vocab_size=int(meta.get("vocab_size", 0)))

  def to_meta(self, task) -> dict:
    """What a checkpoint keeps about the data, so the model can be used without it."""
    return {"dataset": self.name, "sample_rate": int(self.sample_rate), "task": type(task).__name__,
            "tag_names": list(self.tag_names), "class_names": list(self.class_names),
            "feature_dim": int(self.feature_dim), "target_dim": int(self.target_dim),
            "vocab_size": int(self.vocab_size)}
