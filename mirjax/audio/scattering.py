"""1-D wavelet scattering transform of order 1 and 2 in jax.numpy, time-major.

The scattering transform (Mallat, "Group Invariant Scattering", arXiv:1101.2286; for audio
Andén & Mallat, "Deep Scattering Spectrum", arXiv:1304.6763) cascades wavelet modulus
operators and averages each path with a low-pass filter phi at scale T = 2**J:

  S0 x = x * phi
  S1 x(lambda1) = |x * psi_lambda1| * phi
  S2 x(lambda1, lambda2) = ||x * psi_lambda1| * psi_lambda2| * phi,   j2 > j1

(the frequency-decreasing paths: the second wavelet is coarser than the first). The filter
bank follows kymatio's conventions so that the coefficients are the ones kymatio's
`Scattering1D` gives (tests/test_scattering.py): Morlet wavelets defined in the Fourier
domain, Q1 per octave in the first order and Q2 in the second, a bank that is geometric down
to the scale 2**J and linearly spaced below it, reflect padding to a power of two, and
subsampling of every path as far as its bandwidth allows.

`ScatteringBank` holds the filters (NumPy, computed once per J, Q, signal length); `scatter`
applies it to a batch on device (jit-able: the bank is static); `log_scattering` gives the
per-example feature set of time-averaged log coefficients.
"""
import dataclasses
import functools
import math

import jax.numpy as jnp
import numpy as np

from mirjax.audio import spectral

SIGMA0 = 0.1  # bandwidth of the low-pass filter times T
ALPHA = 5.0  # a filter's support ends alpha * sigma above its centre (sets its subsampling)
R_PSI = math.sqrt(0.5)  # neighbouring wavelets cross at this fraction of their peak


def _periodize(h_f, n_periods):
  """Fold Fourier-domain filters (last axis) onto a grid n_periods times coarser: the mean
  of the aliases, the filter of the signal subsampled by n_periods."""
  return h_f.reshape(*h_f.shape[:-1], n_periods, -1).mean(axis=-2)


def morlet(n, xi, sigma):
  """Fourier transform (length n, real) of a Morlet wavelet centred at xi cycles/sample with
  Gaussian bandwidth sigma, or of the Gaussian low-pass when xi is None; periodised over
  enough periods that the Gaussian's tail is below 1e-7, l1-normalised in time."""
  periods = min(int(math.ceil(math.sqrt(-2 * sigma ** 2 * math.log(1e-7)) + 1)), 5)
  f = np.arange((1 - periods) * n, periods * n, dtype=np.float64) / n
  f_low = np.fft.fftfreq(n) if periods == 1 else f
  gauss = _periodize(np.exp(-f_low ** 2 / (2 * sigma ** 2)), 2 * periods - 1)
  if xi is None:
    h = gauss
  else:
    gabor = _periodize(np.exp(-(f - xi) ** 2 / (2 * sigma ** 2)), 2 * periods - 1)
    h = gabor - gabor[0] / gauss[0] * gauss  # subtract a Gaussian so the wavelet has zero mean
  return h / np.abs(np.fft.ifft(h)).sum()


def filter_params(j_scale, q):
  """Centre frequencies xi, bandwidths sigma and subsampling exponents j of the wavelets of
  one order (q per octave): geometric from xi_max down to where the bandwidth reaches that of
  scale 2**j_scale, then q - 1 linearly spaced ones of that bandwidth below."""
  sigma_min = SIGMA0 / 2 ** j_scale
  ratio = 2 ** (1 / q)
  xi_max = max(1 / (1 + 2 ** (3 / q)), 0.35)
  # bandwidth for which neighbours a factor 2**(1/q) apart cross at R_PSI of their peak
  sigma_max = xi_max * (1 - 1 / ratio) / (1 + 1 / ratio) / math.sqrt(2 * math.log(1 / R_PSI))
  xis, sigmas = [], []
  if sigma_max > sigma_min:
    xis, sigmas = [xi_max], [sigma_max]
    while sigmas[-1] > sigma_min * ratio:
      xis.append(xis[-1] / ratio)
      sigmas.append(sigmas[-1] / ratio)
  elbow = xis[-1] if xis else sigma_max
  for k in range(1, q):
    xis.append(elbow * (1 - k / q))
    sigmas.append(sigma_min)
  js = [int(math.floor(-math.log2(min(x + ALPHA * s, 0.5)))) - 1 for x, s in zip(xis, sigmas)]
  return xis, sigmas, js


def _support(h_f, criterion=1e-3):
  """Half-width (samples) beyond which the filter's l1 mass is below `criterion`."""
  h = np.abs(np.fft.ifft(h_f))[: len(h_f) // 2]
  tail = np.cumsum(h[::-1])[::-1]  # l1 mass from each lag to the middle
  below = np.nonzero(tail <= criterion)[0]
  return int(below[0]) + 1 if len(below) else len(h)


@dataclasses.dataclass(frozen=True, eq=False)
class ScatteringBank:
  """Filters of a scattering transform of signals of `length` samples.

  Attributes
  ----------
  length : int, signal length the bank was made for
  J : int, octaves: averaging scale T = 2**J
  Q : (Q1, Q2), wavelets per octave in the first and second order
  max_order : 1 or 2
  padded : int, power-of-two length the signal is reflect-padded to
  pad : (left, right) padding
  phi : (padded,) low-pass filter, Fourier domain
  psi1, psi2 : (n1, padded), (n2, padded) wavelets of each order, Fourier domain
  j1, j2 : subsampling exponents of the wavelets
  xi1, xi2 : centre frequencies (cycles per sample)
  paths : ((n1, n2) or (n1,) or ()) of every output channel, in output order: order 0,
    every first-order path, then every second-order path with j2 > j1 (by n1, then n2)
  """
  length: int
  J: int
  Q: tuple
  max_order: int
  padded: int
  pad: tuple
  phi: np.ndarray
  psi1: np.ndarray
  psi2: np.ndarray
  j1: tuple
  j2: tuple
  xi1: tuple
  xi2: tuple
  paths: tuple

  @property
  def frames(self) -> int:
    """Output frames: the signal subsampled by T = 2**J."""
    start, end = _unpad_bounds(self.pad[0], self.pad[0] + self.length, self.J)
    return end - start

  @property
  def orders(self) -> np.ndarray:
    """(channels,) the order (0, 1 or 2) of every output channel."""
    return np.array([len(p) for p in self.paths])


def _unpad_bounds(start, end, k):
  """Where the signal lies after subsampling the padded signal by 2**k (ceil each halving)."""
  for _ in range(k):
    start, end = (start + 1) // 2, (end + 1) // 2
  return start, end


@functools.lru_cache(maxsize=32)
def scattering_bank(length: int, J: int, Q=8, max_order: int = 2) -> ScatteringBank:
  """The filter bank of `scatter` for signals of `length` samples (cached per arguments).

  Parameters
  ----------
  length : int, samples per signal
  J : int, log2 of the averaging scale T (the output has one frame per 2**J samples)
  Q : int or (Q1, Q2), wavelets per octave; an int means (Q, 1) (default 8)
  max_order : 1 or 2 (default 2)
  """
  q1, q2 = (Q, 1) if isinstance(Q, int) else tuple(Q)
  if min(q1, q2) < 1 or J < 1 or max_order not in (1, 2):
    raise ValueError(f"scattering needs J >= 1, Q >= 1 and max_order 1 or 2; got J={J}, "
                     f"Q={(q1, q2)}, max_order={max_order}")
  if length < 2 ** J:
    raise ValueError(f"a signal of {length} samples is shorter than the averaging scale 2**J = {2 ** J}")
  # pad by three times the low-pass filter's support on each side, to a power of two, but
  # less than the signal length on each side (reflect padding cannot go further)
  min_pad = 3 * _support(morlet(length, None, SIGMA0 / 2 ** J))
  padded = 2 ** min(int(math.ceil(math.log2(length + 2 * min_pad))),
                    int(math.floor(math.log2(3 * length - 2))))
  left = (padded - length) // 2
  xi1, sigma1, j1 = filter_params(J, q1)
  xi2, sigma2, j2 = filter_params(J, q2)
  paths = [()] + [(n,) for n in range(len(xi1))]
  if max_order == 2:
    paths += [(a, b) for a in range(len(xi1)) for b in range(len(xi2)) if j2[b] > j1[a]]
  bank = ScatteringBank(
      length=length, J=J, Q=(q1, q2), max_order=max_order, padded=padded,
      pad=(left, padded - length - left), phi=morlet(padded, None, SIGMA0 / 2 ** J),
      psi1=np.stack([morlet(padded, x, s) for x, s in zip(xi1, sigma1)]),
      psi2=np.stack([morlet(padded, x, s) for x, s in zip(xi2, sigma2)]),
      j1=tuple(j1), j2=tuple(j2), xi1=tuple(xi1), xi2=tuple(xi2), paths=tuple(paths))
  for a in (bank.phi, bank.psi1, bank.psi2):
    a.setflags(write=False)
  return bank


def _subsample(x_hat, k):
  """Fourier transform of x[::2**k] from that of x (fold the spectrum 2**k times)."""
  if k == 0:
    return x_hat
  return x_hat.reshape(*x_hat.shape[:-1], 2 ** k, -1).mean(axis=-2)


def scatter(x, bank: ScatteringBank):
  """Scattering coefficients of a batch of signals.

  Parameters
  ----------
  x : (..., bank.length) real signals
  bank : `scattering_bank(length, J, Q, max_order)`

  Returns
  -------
  (..., bank.frames, len(bank.paths)) float32, time-major: channel c is path bank.paths[c]
  (order 0, then first order, then second order), one frame per 2**J samples.
  """
  x = jnp.asarray(x, jnp.float32)
  if x.shape[-1] != bank.length:
    raise ValueError(f"this scattering bank is for {bank.length} samples; the signal has {x.shape[-1]}")
  lead = x.shape[:-1]
  x = x.reshape(-1, bank.length)
  x = jnp.pad(x, ((0, 0), bank.pad), mode="reflect")
  x_hat = spectral.fft(x, "fft")  # batch-parallel: a sharded batch stays sharded
  J = bank.J
  start, end = _unpad_bounds(bank.pad[0], bank.pad[0] + bank.length, J)

  def _average(u_hat, k):
    """Low-pass a path already subsampled by 2**k, subsample to 2**J, cut the padding."""
    phi = _periodize(bank.phi, 2 ** k).astype(np.float32)
    s = spectral.fft(_subsample(u_hat * phi, J - k), "ifft").real
    return s[..., start:end]

  out = {(): _average(x_hat, 0)}
  for j in sorted(set(bank.j1)):  # first-order wavelets of one subsampling, together
    n1 = [n for n, jn in enumerate(bank.j1) if jn == j]
    k1 = min(j, J)
    u1 = jnp.abs(spectral.fft(_subsample(x_hat[:, None] * bank.psi1[n1].astype(np.float32), k1), "ifft"))
    u1_hat = spectral.fft(u1, "fft")
    s1 = _average(u1_hat, k1)
    out.update({(n,): s1[:, i] for i, n in enumerate(n1)})
    if bank.max_order < 2:
      continue
    for j2 in sorted(set(jn for jn in bank.j2 if jn > j)):  # coarser second-order wavelets
      n2 = [n for n, jn in enumerate(bank.j2) if jn == j2]
      k2 = max(min(j2, J) - k1, 0)
      psi2 = _periodize(bank.psi2[n2], 2 ** k1).astype(np.float32)
      u2 = jnp.abs(spectral.fft(_subsample(u1_hat[:, :, None] * psi2, k2), "ifft"))
      s2 = _average(spectral.fft(u2, "fft"), k1 + k2)
      out.update({(a, b): s2[:, i, m] for i, a in enumerate(n1) for m, b in enumerate(n2)})
  s = jnp.stack([out[p] for p in bank.paths], axis=-1)  # (batch, frames, paths)
  return s.reshape(*lead, *s.shape[1:])


def log_scattering(x, bank: ScatteringBank, eps: float = 1e-6, orders=(1, 2)):
  """Per-example scattering features: log(eps + S) averaged over time, for the paths of
  `orders` (default first and second).

  Returns
  -------
  (..., n_paths) float32, n_paths the number of paths of those orders.
  """
  keep = np.nonzero(np.isin(bank.orders, orders))[0]
  return jnp.log(eps + scatter(x, bank)[..., keep]).mean(axis=-2)
