"""Gradient-blending weights over training, from a comparison's blend runs:
`python -m mirjax.jobs.blend_weights WORKDIR` (the --workdir of a multi-view comparison).

Every re-estimation writes the branch weights to the run's metrics.jsonl (split "blend");
this reads WORKDIR/blend/seed*/metrics.jsonl and draws one panel per branch, one line per
seed, to WORKDIR/blend_weights.png (the comparison job calls it when it has blend runs).
"""
import glob
import json
import os
import sys


def trajectories(run_workdir: str) -> dict:
  """{branch: [(step, weight), ...]} of one run, from its metrics.jsonl (a resumed run's
  repeated steps keep their last line)."""
  by_step = {}
  with open(os.path.join(run_workdir, "metrics.jsonl")) as f:
    for line in f:
      entry = json.loads(line)
      if entry.get("split") == "blend":
        by_step[entry["step"]] = {k[len("weight/"):]: v for k, v in entry.items() if k.startswith("weight/")}
  out = {}
  for step in sorted(by_step):
    for branch, w in by_step[step].items():
      out.setdefault(branch, []).append((step, w))
  return out


def plot(workdir: str, variant: str = "blend") -> str | None:
  """Draw the weights of every seed of `variant` under `workdir`; the PNG's path, or None
  when no run has logged weights yet."""
  runs = sorted(glob.glob(os.path.join(workdir, variant, "seed*", "metrics.jsonl")))
  per_seed = {os.path.basename(os.path.dirname(p)): trajectories(os.path.dirname(p)) for p in runs}
  per_seed = {s: t for s, t in per_seed.items() if t}
  if not per_seed:
    return None
  from matplotlib.figure import Figure  # not pyplot: leaves the user's backend alone
  branches = list(next(iter(per_seed.values())))
  fig = Figure(figsize=(3.2 * len(branches), 3.0))
  axes = fig.subplots(1, len(branches), squeeze=False, sharey=True)[0]
  for ax, branch in zip(axes, branches):
    for seed, traj in per_seed.items():
      steps, weights = zip(*traj.get(branch, [(0, float("nan"))]))
      ax.plot(steps, weights, marker=".", linewidth=1.0, label=seed)
    ax.set_title(branch)
    ax.set_xlabel("step")
  axes[0].set_ylabel("branch weight")
  axes[-1].legend(fontsize=7)
  fig.suptitle(f"gradient-blending weights ({workdir})")
  fig.tight_layout()
  path = os.path.join(workdir, "blend_weights.png" if variant == "blend" else f"blend_weights_{variant}.png")
  fig.savefig(path, dpi=100)
  return path


if __name__ == "__main__":
  if len(sys.argv) != 2:
    sys.exit("usage: python -m mirjax.jobs.blend_weights WORKDIR  (a multi-view comparison's workdir)")
  written = plot(sys.argv[1])
  if written is None:
    sys.exit(f"no blend run with logged weights under {sys.argv[1]!r}")
  print(written)
