"""Datasets: the embedded default data mirjax makes itself, a user's audio folder, and the
real distributions of MagnaTagATune and GTZAN, all as TFDS array_record datasets read
without TensorFlow. `pipeline.load(config.data)` opens the one a config names."""
import os


def default_data_dir() -> str:
  """Where built datasets are cached: `$MIRJAX_DATA_DIR` if set, else ~/.cache/mirjax/tfds."""
  return os.environ.get("MIRJAX_DATA_DIR") or os.path.expanduser("~/.cache/mirjax/tfds")
