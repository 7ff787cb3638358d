"""Every benchmark in one run: `python -m mirjax.bench.all [--out=DIR] [--only=NAME,...] [--quick]`.

The README's speed table is measured by one such run, so all its figures come from the
same machine on the same day. Each benchmark runs in a process of its own, one after the
other (never two at once: they would share the cores), with the flags of its row in the
table; its output goes to the terminal and to DIR/<name>.txt. A benchmark whose baseline
package is missing (torch, implicit, kymatio, scikit-learn) is skipped and says so, and
`accelerator` runs only where JAX sees a GPU or TPU (on a CPU its chip-sized batches
would take hours). DIR/summary.md lists every command with its wall time and exit status.
"""
import datetime
import importlib.util
import os
import subprocess
import sys
import time

from absl import app, flags


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_string("out", "", "Folder for the outputs (default: bench_runs/<UTC date and time>).")
  flags.DEFINE_list("only", [], "Run only these benchmarks (names as in RUNS; default: all).")
  flags.DEFINE_bool("quick", False, "Pass --quick to every benchmark: checks that all of them run.")


FLAGS = flags.FLAGS

# name -> (module, flags, packages the baseline needs, on one core)
RUNS = {
    "frontends": ("mirjax.bench.frontends", [], (), False),
    "frontends_one_core": ("mirjax.bench.frontends", [], (), True),
    "train": ("mirjax.bench.train", ["--rounds=2", "--steps=5"], ("torch",), False),
    "train_float32": ("mirjax.bench.train", ["--models=flagship", "--torch=false", "--dtype=float32"], (), False),
    "train_bfloat16": ("mirjax.bench.train", ["--models=flagship", "--torch=false", "--dtype=bfloat16"], (), False),
    "pipeline": ("mirjax.bench.pipeline", [], (), False),
    "build": ("mirjax.bench.build", [], (), False),
    "speaker": ("mirjax.bench.speaker", [], ("torch",), False),
    "kmeans": ("mirjax.bench.kmeans", [], ("sklearn",), False),
    "scattering": ("mirjax.bench.scattering", [], ("kymatio",), False),
    "wavenet": ("mirjax.bench.wavenet", [], (), False),
    "wmf": ("mirjax.bench.wmf", [], ("implicit",), False),
    "accelerator": ("mirjax.bench.accelerator", [], (), False),
}


def missing(packages) -> list:
  """The packages of `packages` that cannot be imported here."""
  return [p for p in packages if importlib.util.find_spec(p) is None]


def has_accelerator() -> bool:
  """Whether JAX sees a GPU or TPU (asked in a child process: this one never starts JAX)."""
  probe = "import jax; print(jax.default_backend())"
  out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
  return out.returncode == 0 and out.stdout.strip() not in ("", "cpu")


def run_one(name, module, args, one_core, out_dir):
  """Runs one benchmark, echoing and saving its output; (exit status, wall seconds)."""
  command = [sys.executable, "-m", module, *args]
  preexec = None
  if one_core:  # the first core this process may use
    core = min(os.sched_getaffinity(0))
    preexec = lambda: os.sched_setaffinity(0, {core})  # noqa: E731
  t0 = time.perf_counter()
  with open(os.path.join(out_dir, f"{name}.txt"), "w") as log:
    log.write(f"$ {' '.join(command[1:])}{'  (one core)' if one_core else ''}\n")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=preexec)
    for line in proc.stdout:
      sys.stdout.write(line)
      log.write(line)
    status = proc.wait()
  return status, time.perf_counter() - t0


def main(argv):
  del argv
  unknown = sorted(set(FLAGS.only) - set(RUNS))
  if unknown:
    raise app.UsageError(f"--only names {unknown}; the benchmarks are {sorted(RUNS)}")
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d_%H%M")
  out_dir = FLAGS.out or os.path.join("bench_runs", stamp)
  os.makedirs(out_dir, exist_ok=True)
  rows = []
  for name, (module, args, packages, one_core) in RUNS.items():
    if FLAGS.only and name not in FLAGS.only:
      continue
    args = args + (["--quick"] if FLAGS.quick else [])
    if missing(packages):
      rows.append((name, module, args, one_core, f"skipped: {', '.join(missing(packages))} not installed", 0.0))
    elif name == "accelerator" and not has_accelerator():
      rows.append((name, module, args, one_core, "skipped: no GPU or TPU here", 0.0))
    else:
      print(f"\n=== {name} ({len(rows) + 1}): python -m {module} {' '.join(args)}", flush=True)
      status, seconds = run_one(name, module, args, one_core, out_dir)
      rows.append((name, module, args, one_core, "ok" if status == 0 else f"failed (exit status {status})",
                   seconds))
  with open(os.path.join(out_dir, "summary.md"), "w") as f:
    f.write(f"# mirjax benchmarks, {stamp} UTC, {os.cpu_count()} cores on this host\n\n")
    f.write("| benchmark | command | status | wall time |\n|---|---|---|---|\n")
    for name, module, args, one_core, status, seconds in rows:
      where = " (one core)" if one_core else ""
      f.write(f"| {name} | `python -m {module} {' '.join(args)}`{where} | {status} | {seconds:.0f} s |\n")
  print(f"\noutputs and summary: {out_dir}/")
  if any(r[4].startswith("failed") for r in rows):
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
