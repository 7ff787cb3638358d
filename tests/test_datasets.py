"""The dataset registry and the one Info type every loader returns."""
import ml_collections
import numpy as np
import pytest

from mirjax.data import pipeline
from mirjax.data.info import Info
from mirjax.errors import DataError


def test_a_registered_dataset_is_opened_by_name(monkeypatch, tmp_path):
  monkeypatch.setattr(pipeline, "DATASETS", dict(pipeline.DATASETS))
  seen = {}

  @pipeline.register("toy", "toy.csv")
  def _toy(cfg, data_dir):
    seen.update(manual_dir=cfg.manual_dir, data_dir=data_dir)
    return {"train": [{"audio": np.zeros(8, np.int16)}]}, Info(name="toy", sample_rate=8000,
                                                               num_examples={"train": 1})

  cfg = ml_collections.ConfigDict({"name": "toy", "manual_dir": str(tmp_path), "data_dir": ""})
  sources, info = pipeline.load(cfg)
  assert info.name == "toy" and len(sources["train"]) == 1
  assert seen == {"manual_dir": str(tmp_path), "data_dir": None}
  cfg.manual_dir = ""
  with pytest.raises(DataError, match="manual_dir=DIR with toy.csv"):
    pipeline.load(cfg)
  with pytest.raises(ValueError, match="registered already"):
    pipeline.register("toy")(_toy)
  cfg.name = "nonesuch"
  with pytest.raises(DataError, match="unknown data.name 'nonesuch'; mirjax has .*'toy'"):
    pipeline.load(cfg)


def test_every_dataset_mirjax_has_is_registered():
  made_here = {"embedded", "avspeakers", "notes", "aligned"}  # the embedded default data mirjax makes itself
  # "features": the summary vectors a job wrote (mirjax/data/features.py); "song_factors":
  # an audio dataset's clips with their songs' latent factors (mirjax/data/song_factors.py)
  assert set(pipeline.DATASETS) == made_here | {"folder", "mtat", "gtzan", "esc50", "nsynth",
                                                "audio", "voxceleb", "features", "song_factors", "midi"}
  assert all(pipeline.DATASETS[n].manual_dir is None for n in made_here)
  assert all(d.manual_dir for n, d in pipeline.DATASETS.items() if n not in made_here)


def test_info_keeps_what_a_checkpoint_needs():
  info = Info(name="mtat/clean", sample_rate=16000, num_examples={"train": 3},
              tag_names=("rock", "piano"), skipped=1, skipped_files={"a.mp3": "empty"})

  class Tagging:
    pass

  meta = info.to_meta(Tagging())
  assert meta == {"dataset": "mtat/clean", "sample_rate": 16000, "task": "Tagging",
                  "tag_names": ["rock", "piano"], "class_names": [], "feature_dim": 0, "target_dim": 0,
                  "vocab_size": 0}
  back = Info.from_meta(meta)
  assert (back.name, back.sample_rate, back.tag_names, back.class_names) == (
      "mtat/clean", 16000, ("rock", "piano"), ())
  regression = Info.from_meta(Info(name="f", sample_rate=16000, target_dim=8).to_meta(Tagging()))
  assert regression.target_dim == 8  # a regressor's output width survives its checkpoint
  tokens = Info.from_meta(Info(name="notes", sample_rate=0, vocab_size=391).to_meta(Tagging()))
  assert tokens.vocab_size == 391  # so does a language model's vocabulary


def test_the_embedded_loader_returns_the_one_info_type(data_dir):
  _, info = pipeline.load(ml_collections.ConfigDict(
      {"name": "embedded", "config": "smoke", "label": "tempo", "data_dir": data_dir}))
  assert type(info) is Info and info.class_names == ("slow", "medium", "fast")
