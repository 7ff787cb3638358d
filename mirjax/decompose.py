"""Draw what a trained modulation front-end makes of an audio file:
`python -m mirjax.decompose --workdir=W FILE`.

ModNet and SincModNet ("A Modulation Front-End for Music Audio Tagging", arXiv:2105.11836)
decompose audio into acoustic bands x modulation bands over time. This command loads the
newest checkpoint of a training run, passes the file (or a part of it) through its
front-end and draws one image: the compressed band envelopes, then one panel per
modulation filter (its current centre and bandwidth in Hz), time in seconds across,
acoustic band centre frequency in Hz up.

  python -m mirjax.decompose --workdir=workdirs/sincmodnet song.wav
  python -m mirjax.decompose --workdir=workdirs/sincmodnet --offset=30 --seconds=10 --out=dec.png song.mp3
"""
import os
import sys

from absl import app, flags, logging



def _define_flags():
  """The command's flags, defined when it runs (not on import, so `decomposition` can be
  imported beside other mirjax commands that also have a --workdir)."""
  flags.DEFINE_string("workdir", None, "Workdir of a ModNet or SincModNet training run.")
  flags.DEFINE_float("offset", 0.0, "Start of the excerpt drawn, seconds into the file.")
  flags.DEFINE_float("seconds", 10.0, "Length of the excerpt drawn, seconds (0: to the end).")
  flags.DEFINE_string("out", "", "Image file to write; default WORKDIR/decomposition_<file>.png.")
  flags.mark_flags_as_required(["workdir"])


def decomposition(workdir: str, audio):
  """What the run's front-end makes of `audio` (samples,) at its sample rate.

  Returns
  -------
  dict: ``envelopes`` (frames, n_bands), ``decomposition`` (frames, n_bands, n_mod),
  ``band_hz`` (n_bands,), ``mod_centre_hz`` and ``mod_band_hz`` (n_mod,),
  ``frame_rate`` (Hz), ``step`` (the checkpoint's)

  Raises
  ------
  ConfigError: the run's front-end has no modulation stage
  """
  import jax
  import numpy as np
  from mirjax import checkpoint
  from mirjax.errors import ConfigError
  system, state, _ = checkpoint.load_trained(workdir)
  frontend = getattr(system.model, "frontend", None)
  if not hasattr(frontend, "decompose"):
    kind = type(frontend).__name__ if frontend is not None else type(system.model).__name__
    raise ConfigError(f"the run in {workdir!r} has a {kind} front-end, which has no modulation "
                     "stage: use a ModNet or SincModNet run (configs/modnet.py, configs/sincmodnet.py)")
  variables = {"params": state.params, **state.model_state}

  def parts(module, x):
    env, dec = module.frontend.decompose(x)
    centre, band = module.frontend.modulation_bands()
    return env[0], dec[0], module.frontend.band_centres_hz(), centre, band

  env, dec, band_hz, centre, band = jax.device_get(jax.jit(
      lambda v, x: system.model.apply(v, x, method=parts))(variables, np.asarray(audio, np.float32)[None]))
  return {"envelopes": env, "decomposition": dec, "band_hz": band_hz, "mod_centre_hz": centre,
          "mod_band_hz": band, "frame_rate": frontend.sample_rate / frontend.hop,
          "step": int(state.step)}


def plot_decomposition(parts: dict, path: str, title: str = "", offset_s: float = 0.0) -> str:
  """Draw `decomposition`'s output as one image: envelopes, then one panel per modulation band.

  Each panel is frames x acoustic bands, coloured by value (its own colour range), with
  the acoustic bands' centre frequencies in Hz on the y axis and seconds on the x axis.
  """
  import numpy as np
  from matplotlib.figure import Figure  # not pyplot: leaves the user's backend alone
  env, dec = np.asarray(parts["envelopes"]), np.asarray(parts["decomposition"])
  panels = [("band envelopes (compressed)", env)] + [
      (f"modulation {c:.2f} Hz (band {b:.2f} Hz)", dec[:, :, k])
      for k, (c, b) in enumerate(zip(parts["mod_centre_hz"], parts["mod_band_hz"]))]
  cols = 3
  rows = -(-len(panels) // cols)
  fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
  axes = fig.subplots(rows, cols, squeeze=False)
  band_hz = np.asarray(parts["band_hz"])
  seconds = offset_s + np.arange(env.shape[0] + 1) / parts["frame_rate"]
  ticks = np.linspace(0, len(band_hz) - 1, 5).round().astype(int)
  for ax, (name, image) in zip(axes.ravel(), panels):
    mesh = ax.pcolormesh(seconds, np.arange(len(band_hz) + 1), image.T, shading="flat",
                         cmap="magma", rasterized=True)
    ax.set_yticks(ticks + 0.5, [f"{band_hz[i]:.0f}" for i in ticks])
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("acoustic band (Hz)")
    fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.02)
  for ax in axes.ravel()[len(panels):]:
    ax.set_visible(False)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def main(argv):
  files = argv[1:]
  if len(files) != 1:
    raise app.UsageError("name one audio file: python -m mirjax.decompose --workdir=W FILE")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  from mirjax import checkpoint
  from mirjax.data import audio_io
  from mirjax.errors import ConfigError, MirjaxError
  FLAGS, path = flags.FLAGS, files[0]
  try:
    model_cfg = checkpoint.load_config(FLAGS.workdir).model
    if "frontend" not in model_cfg:
      raise ConfigError(f"the run in {FLAGS.workdir!r} is a {model_cfg.name!r} model; use a ModNet "
                       "or SincModNet tagging run (configs/modnet.py, configs/sincmodnet.py)")
    rate = model_cfg.frontend.sample_rate
    audio = audio_io.load_audio(path, rate)
    start = int(round(FLAGS.offset * rate))
    stop = len(audio) if FLAGS.seconds <= 0 else start + int(round(FLAGS.seconds * rate))
    if start >= len(audio):
      raise ConfigError(f"--offset={FLAGS.offset} s is past the end of {path!r} "
                       f"({len(audio) / rate:.1f} s)")
    parts = decomposition(FLAGS.workdir, audio[start:stop])
  except MirjaxError as e:  # a bad workdir, file (AudioReadError) or flag: one line
    sys.exit(f"error: {e}")
  name = os.path.splitext(os.path.basename(path))[0]
  out = FLAGS.out or os.path.join(FLAGS.workdir, f"decomposition_{name}.png")
  plot_decomposition(parts, out, offset_s=FLAGS.offset,
                     title=f"{os.path.basename(path)}: front-end of {FLAGS.workdir} at step {parts['step']}")
  print(out)


def run():
  _define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
