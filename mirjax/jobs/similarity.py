"""The similarity job (`config.job = "similarity"`, configs/explain.py): how alike are a
model's layers and hand-crafted features, trained and untrained (after Yanchenko et al.,
"Towards Explainable Convolutional Features for Music Audio Modeling", arXiv:2106.00110).

  python -m mirjax.main --config=configs/explain.py:similarity --config.trained=workdirs/melcnn --workdir=workdirs/melcnn_similarity

One split of the trained run's data (or of `config.data`) is read whole, each clip as
`eval.n_chunks` crops, as evaluation reads it. Models: the trained run at `config.step`,
and the same model initialised untrained from each of `config.untrained_seeds`. Layers:
every block output and the embedding the back-end sows ("backend/block0", ...,
"backend/embedding"), each pooled to one vector per crop by its mean over time (and
frequency), averaged over the crops. Hand-crafted feature sets of the same crops (mirjax.audio):

  scattering1  time-averaged log first-order scattering (J = config.scattering.J octaves,
               Q = config.scattering.Q wavelets per octave)
  scattering2  the same for the second order
  mfcc         mean and standard deviation over frames of 20 MFCCs
  logmel       mean and standard deviation over frames of a 64-band log-mel spectrogram

A last column, "chance", is the CKA against the first feature set with its clips shuffled:
what features unrelated to the layer score on this many clips (biased CKA is well above 0
for a few hundred clips). CKA of every (model, layer) against every feature set, for each kernel of `config.kernels`
("linear", "rbf"): exact (mirjax.evaluation.similarity) for splits of at most
`config.cka_batch` clips, else the minibatch estimator over batches of that many
(arXiv:2010.15327). Hand-crafted features are standardised per dimension first (their units
differ: log energies, dB, cepstra); layer activations are used as they are, as Kornblith et
al. do. Writes WORKDIR/cka_<kernel>.csv (one row per model and layer, one
column per feature set), WORKDIR/cka_<kernel>.png (heatmaps: the trained model, and the
untrained seeds' mean) and WORKDIR/similarity.json (all of it, plus the untrained seeds'
mean and standard deviation per cell).
"""
import csv
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from mirjax import audio, inputs as inputs_lib, metrics, models, sharding, workdir as workdir_lib
from mirjax.audio import scattering
from mirjax.errors import ConfigError
from mirjax.evaluation import similarity as sim
from mirjax.jobs import embed, evaluate, train

FEATURE_SETS = ("scattering1", "scattering2", "mfcc", "logmel")
CHANCE = "chance"  # the column of the first feature set with its clips shuffled


def check(config, workdir: str):
  """`evaluate.check`, and settings of this job that cannot work."""
  evaluate.check(config, workdir)
  if len(evaluate.splits_of(config)) != 1:
    raise ConfigError(f"config.splits={tuple(config.splits)!r}: the similarity job reads one split, "
                      "e.g. --config.splits=test")
  bad = [k for k in config.kernels if k not in sim.KERNELS]
  if bad or not config.kernels:
    raise ConfigError(f"config.kernels={tuple(config.kernels)!r}: choose among {sim.KERNELS}")
  bad = [f for f in config.features if f not in FEATURE_SETS]
  if bad or not config.features:
    raise ConfigError(f"config.features={tuple(config.features)!r}: choose among {FEATURE_SETS}")
  if config.cka_batch < 8:
    raise ConfigError(f"config.cka_batch={config.cka_batch}: the minibatch estimator needs batches of "
                      "at least 8 clips (256 is a good size)")


def compared_layers(widths: dict) -> list:
  """The layers compared: every sown block output and the embedding, in depth order; a model
  that sows none gives every layer `embed.layer_outputs` finds."""
  blocks = sorted((n for n in widths if n.rsplit("/", 1)[-1].startswith("block")),
                  key=lambda n: (n.rsplit("/", 1)[0], int(n.rsplit("block", 1)[1])))
  tail = [n for n in widths if n.rsplit("/", 1)[-1] == "embedding"]
  return blocks + tail or sorted(widths)


def pool_layer(x):
  """(batch, ..., channels) -> (batch, channels): the mean over every axis between."""
  return x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1) if x.ndim > 2 else x


def layer_step(state, inputs, *, model, names):
  """{layer: (batch, channels)} of inputs of (batch, chunks, ...), crops averaged."""
  folded, (b, c) = inputs_lib.fold_chunks(inputs)
  out = embed.layer_outputs(model, {"params": state.params, **state.model_state}, folded)
  return {n: pool_layer(out[n]).reshape(b, c, -1).mean(axis=1) for n in names}


def handcrafted(audio_chunks, *, sr: int, features, bank):
  """{feature set: (batch, D)} of audio (batch, chunks, time), crops averaged."""
  b, c, t = audio_chunks.shape
  x = audio_chunks.reshape(b * c, t)
  out = {}
  if "scattering1" in features:
    out["scattering1"] = scattering.log_scattering(x, bank, orders=(1,))
  if "scattering2" in features:
    out["scattering2"] = scattering.log_scattering(x, bank, orders=(2,))
  stats = lambda f: jnp.concatenate([f.mean(axis=1), f.std(axis=1)], axis=-1)  # noqa: E731
  if "mfcc" in features or "logmel" in features:
    lm = audio.log_melspectrogram(x, sr=sr, n_fft=1024, hop_length=512, n_mels=64)
    if "logmel" in features:
      out["logmel"] = stats(lm)
    if "mfcc" in features:
      out["mfcc"] = stats(audio.mfcc(S=lm, n_mfcc=20))
  return {k: v.reshape(b, c, -1).mean(axis=1) for k, v in out.items()}


def features_step(state, inputs, *, sr, features, bank):
  del state
  return handcrafted(inputs["audio"], sr=sr, features=features, bank=bank)


def cka_matrix(layer_feats: dict, hand_feats: dict, kernel: str, batch: int) -> dict:
  """{(layer, feature set): CKA}: exact for at most `batch` examples, else the minibatch
  estimator over consecutive batches of `batch` (a last, shorter one is dropped when it
  has fewer than 8 examples)."""
  n = len(next(iter(hand_feats.values())))
  exact = jax.jit(functools.partial(sim.feature_cka, kernel=kernel))
  terms = jax.jit(functools.partial(sim.minibatch_hsic_terms, kernel=kernel))
  standard = lambda a: (a - a.mean(0)) / (a.std(0) + 1e-8)  # noqa: E731  (per-dimension scale)
  hand = {f: jnp.asarray(standard(hf), jnp.float32) for f, hf in hand_feats.items()}  # once, not per layer
  out = {}
  for lname, lf in layer_feats.items():
    x = jnp.asarray(lf, jnp.float32)
    for fname, y in hand.items():
      if n <= batch:
        value = exact(x, y)
      else:
        total = sum(terms(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)
                    if min(batch, n - i) >= 8)
        value = sim.minibatch_cka(total)
      out[(lname, fname)] = float(value)
  return out


def write_csv(path: str, table: dict, features) -> None:
  """One row per (model, layer), one column per feature set."""
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["model", "layer", *features])
    for (model_name, layer), row in table.items():
      w.writerow([model_name, layer, *(f"{row[k]:.4f}" for k in features)])


def plot_heatmaps(path: str, panels: dict, layers, features, kernel: str) -> None:
  """One heatmap (layers x feature sets, CKA in [0, 1]) per panel, values written in."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, len(panels), figsize=(2.2 + 1.2 * len(features) * len(panels),
                                                     1.2 + 0.45 * len(layers)), squeeze=False)
  fig.subplots_adjust(wspace=0.45)
  for ax, (title, grid) in zip(axes[0], panels.items()):
    im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=30, ha="right")
    ax.set_yticks(range(len(layers)), [l.split("/")[-1] for l in layers])
    ax.set_title(title, fontsize=9)
    for i in range(len(layers)):
      for j in range(len(features)):
        ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                color="white" if grid[i, j] < 0.6 else "black")
  fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label=f"{kernel} CKA")
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)


def similarity(config, workdir: str) -> dict:
  """Writes the CKA tables and heatmaps of the trained and untrained models to WORKDIR;
  returns what WORKDIR/similarity.json holds."""
  check(config, workdir)
  with workdir_lib.lock(workdir, primary=jax.process_index() == 0):
    mesh = sharding.make_mesh(config.mesh.num_devices)
    opened = evaluate.open_run(config, mesh)
    run, cfg = opened.run, opened.config
    split, source = next(iter(opened.sources.items()))
    model, crop = run.system.model, run.system.crop
    example = models.example_inputs(run.config.model, crop)
    layers = compared_layers(embed.layer_widths(model, {"params": run.state.params,
                                                        **run.state.model_state}, example))
    replicated = sharding.replicated(mesh)
    states = {f"trained (step {int(run.step)})": run.state}
    for seed in config.untrained_seeds:
      states[f"untrained (seed {int(seed)})"] = jax.device_put(
          run.system.make_state(jax.random.key(int(seed))), replicated)
    state_shardings = jax.tree.map(lambda _: replicated, run.system.abstract_state)
    batch_sharding = sharding.batch_sharding(mesh)
    jit = lambda fn: jax.jit(fn, in_shardings=(state_shardings, batch_sharding),  # noqa: E731
                             out_shardings=batch_sharding)
    sr = int(opened.info.sample_rate)
    bank = scattering.scattering_bank(crop, int(config.scattering.J), int(config.scattering.Q))
    feats, _ = train.run_over_split(
        run.state, source, jit(functools.partial(features_step, sr=sr, features=tuple(config.features),
                                                 bank=bank)),
        mesh=mesh, cfg=cfg, crop=crop, target="")
    # the chance level: the first feature set with its clips shuffled, so that it has the
    # same size and spread but no relation to the layers (CKA of a few hundred clips is
    # far from 0 even then)
    first = config.features[0]
    feats[CHANCE] = feats[first][np.random.default_rng(0).permutation(len(feats[first]))]
    step = jit(functools.partial(layer_step, model=model, names=tuple(layers)))
    tables = {k: {} for k in config.kernels}
    for name, state in tqdm(states.items(), desc="similarity", unit="model", disable=jax.process_index() != 0,
                            leave=False):
      acts, _ = train.run_over_split(state, source, step, mesh=mesh, cfg=cfg, crop=crop, target="")
      for kernel in config.kernels:
        cells = cka_matrix(acts, feats, kernel, int(config.cka_batch))
        for layer in layers:
          tables[kernel][(name, layer)] = {f: cells[(layer, f)] for f in (*config.features, CHANCE)}
    features = [*config.features, CHANCE]
    n = len(next(iter(feats.values())))
    out = {"trained": os.path.abspath(config.trained), "step": int(run.step), "dataset": opened.info.name,
           "split": split, "examples": int(n), "layers": layers, "features": features,
           "models": list(states), "untrained_seeds": [int(s) for s in config.untrained_seeds],
           "scattering": {"J": int(config.scattering.J), "Q": int(config.scattering.Q)},
           "estimator": "exact" if n <= config.cka_batch else f"minibatch of {int(config.cka_batch)}",
           "cka": {}, "untrained_mean": {}, "untrained_std": {}}
    untrained = [m for m in states if m.startswith("untrained")]
    for kernel, table in tables.items():
      out["cka"][kernel] = {f"{m}|{l}": row for (m, l), row in table.items()}
      if jax.process_index() != 0:
        continue
      write_csv(os.path.join(workdir, f"cka_{kernel}.csv"), table, features)
      grid = lambda m: np.array([[table[(m, l)][f] for f in features] for l in layers])  # noqa: E731
      panels = {next(iter(states)): grid(next(iter(states)))}
      if untrained:
        stack = np.stack([grid(m) for m in untrained])
        panels[f"untrained, mean of {len(untrained)} seeds"] = stack.mean(0)
        out["untrained_mean"][kernel] = stack.mean(0).round(4).tolist()
        out["untrained_std"][kernel] = stack.std(0).round(4).tolist()
      plot_heatmaps(os.path.join(workdir, f"cka_{kernel}.png"), panels, layers, features, kernel)
    metrics.write_json(os.path.join(workdir, "similarity.json"), out)
    if jax.process_index() == 0:
      print(f"{out['trained']} at step {out['step']} and {len(untrained)} untrained seeds, {len(layers)} "
            f"layers x {len(features)} feature sets on {n} {split} clips of {out['dataset']}: "
            + ", ".join(f"{os.path.join(workdir, f'cka_{k}')}.csv/.png" for k in config.kernels))
    return out
