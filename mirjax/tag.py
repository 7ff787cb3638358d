"""Tag audio files with a trained model: `python -m mirjax.tag --workdir=W FILE [FILE ...]`.

Loads the newest checkpoint in --workdir (the run's own config and tag names are stored
in it), scores each file over its whole length in sliding windows of the training crop
length, averages the windows' scores and prints each file's top tags. A file of any
length is read block by block, so memory stays bounded. A file that cannot be read is
reported on stderr and the others are still tagged; the exit status is then 1.

  python -m mirjax.tag --workdir=workdirs/sincmodnet song.mp3 other.wav
  python -m mirjax.tag --workdir=workdirs/sincmodnet --format=json --top_k=10 *.flac
"""
import csv
import functools
import io
import sys

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "Workdir of a training run (python -m mirjax.main ...).")
flags.DEFINE_integer("top_k", 5, "Tags printed per file, best first (0: all).", lower_bound=0)
flags.DEFINE_enum("format", "text", ["text", "json", "csv"], "Output format on stdout.")
flags.DEFINE_float("hop_seconds", None, "Seconds between window starts (> 0); default: half a window.")
flags.DEFINE_integer("batch_windows", 16, "Windows scored per model call (memory grows with it).",
                     lower_bound=1)
flags.mark_flags_as_required(["workdir"])
flags.register_validator("hop_seconds", lambda v: v is None or v > 0,
                         "--hop_seconds must be a positive number of seconds (or left out: half a window)")


class Tagger:
  """A trained model from a workdir's newest checkpoint, ready to score audio windows."""

  def __init__(self, workdir: str):
    import jax
    from mirjax import checkpoint, steps
    from mirjax.errors import ConfigError
    system, self.state, meta = checkpoint.load_trained(workdir)
    if meta.get("feature_dim"):
      raise ConfigError(f"the model in {workdir} reads summary features (a feature dataset, e.g. a "
                        "kmeans run's), not audio: score it with configs/eval.py; its kmeans "
                        "run's features come from audio only through that job")
    self.model, self.step = system.model, int(self.state.step)
    self.sample_rate, self.window = meta["sample_rate"], system.crop
    self.labels = tuple(meta["tag_names"] or meta["class_names"])
    self.branches = system.task.predict_from  # the configured prediction (task.predict_from)
    self._score = jax.jit(functools.partial(steps.eval_step, model=system.model, task=system.task))

  def score_windows(self, windows):
    """(n, window) float32 -> (n, n_labels) scores of the model's prediction: the mean of its
    `task.predict_from` branches, as the run's own evaluation scores it."""
    import numpy as np
    from mirjax.tasks.common import final_scores
    batch = {"audio": np.asarray(windows, np.float32)[:, None, :]}  # one chunk per window
    return final_scores(self._score(self.state, batch), self.branches)

  def score_file(self, path: str, hop: int, batch_windows: int):
    """(mean scores (n_labels,), number of windows, seconds of audio) of one whole file; a
    file shorter than a window is zero-padded to one (with a warning)."""
    import numpy as np
    from mirjax.data import audio_io
    total, count, pending, end = 0.0, 0, [], 0

    def flush():
      n = len(pending)  # pad to a fixed batch so the model compiles once
      batch = np.stack(pending + [np.zeros(self.window, np.float32)] * (batch_windows - n))
      pending.clear()
      return self.score_windows(batch)[:n].sum(axis=0)

    for start, window, n_samples in audio_io.stream_windows(path, self.sample_rate, self.window, hop):
      pending.append(window)
      end = max(end, start + n_samples)
      count += 1
      if len(pending) == batch_windows:
        total = total + flush()
    if pending:
      total = total + flush()
    if end < self.window:
      logging.warning("%s is %.2f s long, shorter than the model's %.2f s window: it was "
                      "zero-padded to one window, so its scores are less reliable", path,
                      end / self.sample_rate, self.window / self.sample_rate)
    return total / count, count, end / self.sample_rate


def _format(results, fmt: str) -> str:
  if fmt == "json":
    from mirjax import metrics
    return metrics.dumps(results, indent=2)  # strict JSON: a non-finite score is null
  if fmt == "csv":
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["file", "rank", "tag", "score"])
    for r in results:
      for rank, t in enumerate(r["tags"], start=1):
        w.writerow([r["file"], rank, t["tag"], f"{t['score']:.4f}"])
    return out.getvalue().rstrip("\n")
  lines = []
  for r in results:
    lines.append(f"{r['file']}  ({r['seconds']:.1f} s, {r['windows']} windows)")
    lines += [f"  {t['tag']:<24} {t['score']:.3f}" for t in r["tags"]]
  return "\n".join(lines)


def main(argv):
  files = argv[1:]
  if not files:
    raise app.UsageError("name at least one audio file: python -m mirjax.tag --workdir=W FILE ...")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  import numpy as np
  from mirjax.data.audio_io import AudioReadError
  from mirjax.errors import MirjaxError
  FLAGS = flags.FLAGS
  try:
    tagger = Tagger(FLAGS.workdir)
  except MirjaxError as e:
    sys.exit(f"error: {e}")
  hop_s = FLAGS.hop_seconds if FLAGS.hop_seconds else tagger.window / tagger.sample_rate / 2
  hop = max(1, int(round(hop_s * tagger.sample_rate)))
  results, failed = [], 0
  for path in files:
    try:
      scores, n, seconds = tagger.score_file(path, hop, FLAGS.batch_windows)
    except AudioReadError as e:
      print(f"mirjax.tag: skipped: {e}", file=sys.stderr)
      failed += 1
      continue
    order = np.argsort(-scores)[:FLAGS.top_k or None]
    results.append({"file": path, "seconds": round(seconds, 3), "windows": n,
                    "tags": [{"tag": tagger.labels[i], "score": float(scores[i])} for i in order]})
  if results:
    print(_format(results, FLAGS.format))
  if failed:
    sys.exit(1)


def run():
  app.run(main)


if __name__ == "__main__":
  run()
