"""Every config file is its experiment: its docstring opens with its run command, every
command it documents gives a complete config, and its variants are its own."""
import glob
import os
import re

import pytest

from mirjax import config as config_lib, errors, validate
from mirjax.jobs import compare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))


def _documented_args(path):
  """The config arguments of the commands in a config file's docstring."""
  text = open(path).read()
  docstring = text.split('"""')[1]
  name = os.path.basename(path)
  return docstring, sorted({m or None for m in re.findall(rf"--config=configs/{name}(?::(\S+))?", docstring)},
                           key=str)


def test_there_are_configs():
  assert {"sincmodnet.py", "multiview.py", "ssl.py", "rawgrid.py"} <= {os.path.basename(f) for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_a_config_opens_with_its_run_command_and_states_its_experiment(path):
  docstring, args = _documented_args(path)
  name = os.path.basename(path)
  assert docstring.splitlines()[0].startswith(f"python -m mirjax.main --config=configs/{name}"), (
      f"{name}: the docstring's first line is its run command")
  assert args, f"{name} documents no command"
  for arg in args:
    c = config_lib.from_file(path, arg)
    assert config_lib.unset_fields(c) == [], (name, arg)
    if "train" in c:  # every experiment field is in the file itself, not only in the base
      source = open(path).read()
      for field in config_lib.EXPERIMENT_FIELDS:
        assert re.search(rf"c\.{re.escape(field)} = ", source), (name, field)


def test_a_config_that_leaves_its_experiment_unset_is_refused_before_anything_runs():
  c = config_lib.base(config_lib.models.default_config("logmel"))
  assert config_lib.unset_fields(c) == list(config_lib.EXPERIMENT_FIELDS)
  with pytest.raises(errors.ConfigError, match=r"config.optim.learning_rate, config.train.num_steps, "
                     r"config.train.batch_size, config.data.crop_seconds unset"):
    validate.check(c)
  c.optim.learning_rate, c.train.batch_size, c.data.crop_seconds = 1e-3, 8, 1.0
  c.train.num_epochs = 2.0  # steps from epochs
  validate.check(c)


def test_variants_are_override_sets_the_comparison_applies_alike():
  """Multi-view variants are configs/multiview.py's override sets: the comparison job has
  no multi-view case; a variant of the comparison is the config that variant's word gives,
  and the views given on the command line reach every fused variant."""
  grid = config_lib.from_file("multiview", "smoke,compare")
  for variant in ("single_cqt", "concat", "uniform"):
    got, want = compare.variant_config(grid, variant, 0), config_lib.from_file("multiview", f"smoke,{variant}")
    for section in ("model", "task", "optim", "data", "train"):
      assert got[section].to_dict() == want[section].to_dict(), (variant, section)
    assert got.variant == variant
  grid.model.views = ("logmel", "cqt")  # as --config.model.views="('logmel','cqt')"
  assert tuple(compare.variant_config(grid, "blend", 0).model.views) == ("logmel", "cqt")
  assert tuple(compare.variant_config(grid, "single_mfcc", 0).model.views) == ("mfcc",)
  with pytest.raises(errors.ConfigError, match="name no variant with 'compare'"):
    config_lib.from_file("multiview", "smoke,single_cqt,compare")
  del grid.compare["overrides"]
  with pytest.raises(errors.ConfigError, match="needs config.compare.overrides"):
    compare.variant_config(grid, "blend", 0)
  with pytest.raises(errors.ConfigError, match="unknown multi-view variant 'nonesuch'"):
    config_lib.from_file("multiview", "smoke,nonesuch")


def test_unknown_config_words_name_the_file_and_the_words():
  with pytest.raises(errors.ConfigError, match=r"configs/sincmodnet.py: .*'mtta' is unknown.*'gtzan'"):
    config_lib.from_file("sincmodnet", "mtta")
  with pytest.raises(errors.ConfigError, match="at most one of"):
    config_lib.from_file("melcnn", "smoke,mtat")


def test_a_comparison_section_alone_does_not_block_a_resume():
  """A run trained by a comparison before its config dropped the `compare` section (or with
  another one) resumes: a training run never reads it."""
  from mirjax import checkpoint
  saved = config_lib.from_file("multiview", "smoke,compare").to_dict()
  current = compare.variant_config(config_lib.from_file("multiview", "smoke,compare"), "blend", 0).to_dict()
  saved["job"] = current["job"]
  assert checkpoint.config_differences(saved, current) == []
  current["optim"]["learning_rate"] = 0.5
  assert [k for k, *_ in checkpoint.config_differences(saved, current)] == ["optim.learning_rate"]


def test_each_blending_variant_gets_its_own_weights_plot(tmp_path):
  import json
  from mirjax.jobs import blend_weights
  for variant in ("blend", "blend_slow"):
    run = tmp_path / variant / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(json.dumps({"split": "blend", "step": 4, "weight/joint": 0.6,
                                                   "weight/logmel": 0.4}) + "\n")
  paths = {blend_weights.plot(str(tmp_path), v) for v in ("blend", "blend_slow")}
  assert paths == {str(tmp_path / "blend_weights.png"), str(tmp_path / "blend_weights_blend_slow.png")}
