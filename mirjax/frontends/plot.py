"""Plots of front-end filter magnitude responses (the dict `frequency_responses` returns)."""
import matplotlib.cm
import numpy as np
from matplotlib.figure import Figure  # not pyplot: leaves the user's backend (e.g. a notebook's) alone


def plot_frequency_responses(responses: dict, path: str, title: str = "",
                             db_range: float = 60.0) -> str:
  """Draw one panel per filter bank and save the figure.

  Parameters
  ----------
  responses : dict, ``{bank_name: {"freqs_hz": (n_freqs,), "magnitude": (n_filters,
    n_freqs)}}`` as returned by a front-end's ``frequency_responses``
  path : str, output image file (format from the extension, e.g. ".png")
  title : str, figure title (default "")
  db_range : float, dB shown below each bank's peak (default 60.0); magnitudes are drawn
    as ``20 log10(|H| / max |H|)`` over the whole bank

  Returns
  -------
  path
  """
  names = list(responses)
  fig = Figure(figsize=(8, 3 * len(names)))
  axes = fig.subplots(len(names), 1, squeeze=False)
  for ax, name in zip(axes[:, 0], names):
    freqs = np.asarray(responses[name]["freqs_hz"])
    mag = np.asarray(responses[name]["magnitude"], np.float64)
    db = 20.0 * np.log10(np.maximum(mag / max(mag.max(), 1e-30), 1e-12))
    colors = matplotlib.cm.viridis(np.linspace(0.0, 1.0, len(db)))
    for row, color in zip(db, colors):
      ax.plot(freqs, row, color=color, linewidth=0.8)
    ax.set_ylim(-db_range, 3.0)
    ax.set_xlim(freqs[0], freqs[-1])
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("magnitude (dB)")
    ax.set_title(f"{name}: {len(db)} filters")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def peak_frequency_order(freqs_hz, magnitude):
  """(order, peak_hz): filter indices sorted by the frequency of their largest response,
  lowest first (ties keep filter order), and each filter's peak frequency in Hz.

  Parameters
  ----------
  freqs_hz : array (n_freqs,)
  magnitude : array (n_filters, n_freqs)
  """
  peak_hz = np.asarray(freqs_hz)[np.argmax(np.asarray(magnitude), axis=1)]
  return np.argsort(peak_hz, kind="stable"), peak_hz


def plot_sorted_filters(responses: dict, path: str, title: str = "",
                        db_range: float = 40.0) -> str:
  """Draw each bank's magnitude responses as an image, one row per filter, the rows sorted
  by peak frequency (as Dieleman & Schrauwen 2014 show their learned raw-audio filters).

  Parameters
  ----------
  responses : dict, ``{bank_name: {"freqs_hz": (n_freqs,), "magnitude": (n_filters,
    n_freqs)}}`` as returned by a front-end's ``frequency_responses``
  path : str, output image file (format from the extension, e.g. ".png")
  title : str, figure title (default "")
  db_range : float, dB shown below each filter's own peak (default 40.0); each row is
    ``20 log10(|H_k| / max |H_k|)``, so quiet filters show their shape too

  Returns
  -------
  path
  """
  names = list(responses)
  fig = Figure(figsize=(8, 4 * len(names)))
  axes = fig.subplots(len(names), 1, squeeze=False)
  for ax, name in zip(axes[:, 0], names):
    freqs = np.asarray(responses[name]["freqs_hz"])
    mag = np.asarray(responses[name]["magnitude"], np.float64)
    order, _ = peak_frequency_order(freqs, mag)
    rows = mag[order] / np.maximum(mag[order].max(axis=1, keepdims=True), 1e-30)
    db = np.maximum(20.0 * np.log10(np.maximum(rows, 1e-12)), -db_range)
    image = ax.imshow(db, aspect="auto", origin="lower", interpolation="nearest", cmap="magma",
                      extent=(freqs[0], freqs[-1], -0.5, len(db) - 0.5), vmin=-db_range, vmax=0.0)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("filter, by peak frequency")
    ax.set_title(f"{name}: {len(db)} filters")
    fig.colorbar(image, ax=ax, label="dB below the filter's peak")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path
