"""Every user mistake is one line naming the setting and what to do, before any data is
loaded or folder made; a programming error keeps its traceback."""
import os
import subprocess
import sys

import pytest

from mirjax import config as config_lib, errors, sharding, validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(tmp_path, config, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", MIRJAX_DATA_DIR=str(tmp_path / "data"),
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  return subprocess.run([sys.executable, "-m", "mirjax.main", f"--config={config}",
                         f"--workdir={tmp_path / 'w'}", *extra], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("config, extra, says", [
    ("configs/melcnn.py:smoke", ["--config.train.num_stepz=3"],
     "--config.train.num_stepz: the config has no field 'num_stepz'; did you mean 'num_steps'?"),
    ("configs/nope.py", [], "there is no config file 'configs/nope.py'"),
    ("configs/melcnn.py:nonesuch", [], "'nonesuch' is unknown or repeated; the words are"),
    ("configs/melcnn.py:smoke", ["--config.train.checkpoint_every=0"], "config.train.checkpoint_every=0 must be"),
    ("configs/melcnn.py:smoke", ["--config.data.crop_seconds=0"], "config.data.crop_seconds=0.0"),
    ("configs/melcnn.py:smoke", ["--config.eval.batch_size=12"], "eval.batch_size=12 must be a positive multiple of the 8"),
    ("configs/melcnn.py:smoke", ["--config.train.num_steps=abc"], "--config.train.num_steps=abc"),
    ("configs/multiview.py:smoke,compare", ["--config.compare.variants=('nonesuch',)"],
     "names 'nonesuch', which compare.overrides lacks"),
])
def test_a_user_mistake_is_one_line_and_makes_nothing(tmp_path, config, extra, says):
  p = _main(tmp_path, config, *extra)
  assert p.returncode != 0
  assert "Traceback" not in p.stderr, p.stderr[-3000:]
  first = [l for l in p.stderr.splitlines() if l.startswith("error: ")]
  assert len(first) == 1 and says in first[0], p.stderr[-3000:]
  assert not os.path.exists(tmp_path / "w")
  assert not os.path.exists(tmp_path / "data")  # stopped before any data was built


def test_a_workdir_that_is_a_file_is_one_line(tmp_path):
  (tmp_path / "w").write_text("x")
  p = _main(tmp_path, "configs/melcnn.py:smoke")
  assert p.returncode != 0 and "Traceback" not in p.stderr
  assert p.stderr.strip().splitlines()[-1].startswith("error: --workdir=") and "is a file" in p.stderr
  assert (tmp_path / "w").read_text() == "x"


def test_a_programming_error_keeps_its_traceback(tmp_path):
  code = ("import sys\nfrom mirjax.jobs import train\n"
          "def bug(config, workdir): raise ValueError('incompatible shapes (3,) and (4,)')\n"
          "train.train_and_evaluate = bug\nfrom mirjax import main\n"
          f"sys.argv = ['mirjax', '--config=configs/melcnn.py:smoke', '--workdir={tmp_path / 'w'}']\n"
          "main.run()\n")
  p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                     capture_output=True, text=True, timeout=300)
  assert p.returncode != 0
  assert "Traceback" in p.stderr and "ValueError: incompatible shapes" in p.stderr


def test_config_checks_name_the_setting():
  c = config_lib.from_file("melcnn", "smoke")
  validate.check(c, sharding.make_mesh(-1))  # the smoke config itself is fine
  for path, value, says in (("train.log_every", 0, "train.log_every=0"),
                            ("train.keep_checkpoints", 0, "keep_checkpoints"),
                            ("train.num_steps", 0, "needs >= 1 step"),
                            ("data.holdout_fraction", 1.0, "holdout_fraction"),
                            ("train.batch_size", 12, "train.batch_size=12"),
                            ("data.name", "nonesuch", "not a dataset mirjax has; choose one of"),
                            ("data.name", "gtzan", "manual_dir=DIR with GTZAN: genres/")):
    bad = c.copy_and_resolve_references()
    section, field = path.split(".")
    bad[section][field] = value
    with pytest.raises(errors.ConfigError, match=says):
      validate.check(bad, sharding.make_mesh(-1))
