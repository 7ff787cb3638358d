"""A source-filter voice synthesiser in NumPy, for the synthetic audio-visual speakers.

Source: a Rosenberg glottal pulse train (Rosenberg 1971, flow g = (1 - cos(pi t / Tp)) / 2 while
opening, cos(pi (t - Tp) / (2 Tn)) while closing, 0 while closed; its time derivative excites
the tract, which also models lip radiation) at the speaker's f0 with per-period jitter and
shimmer, plus aspiration noise gated by the glottal cycle (breathiness).
Filter: a cascade of four formant resonances, |H_k(f)| = F_k^2 / sqrt((F_k^2 - f^2)^2 + (B_k f)^2),
applied frame by frame in the STFT domain so that formants glide between phones. Formants are
Peterson & Barney's (1952) averages for men, scaled by 17.5 cm / the speaker's vocal-tract length
and by the speaker's own per-formant deviation. Fricatives, bursts and aspiration are
band-shaped noise. Content is a random syllable string (vowels the speaker favours, consonants,
stress, pauses) with a declining f0 contour, pitch accents and a random final rise.
"""
from typing import NamedTuple

import numpy as np

SAMPLE_RATE = 16_000  # Hz
N_FFT, HOP = 512, 128  # STFT of the synthesis: 32 ms frames every 8 ms
REFERENCE_VTL = 17.5  # cm: the vocal tract Peterson & Barney's men's formants stand for

# Vowels: F1, F2, F3 (Hz) of men, Peterson & Barney (1952); F4 is taken as 3500 Hz.
VOWELS = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "E": (530, 1840, 2480), "ae": (660, 1720, 2410),
    "A": (730, 1090, 2440), "O": (570, 840, 2410), "U": (440, 1020, 2240), "u": (300, 870, 2240),
    "V": (640, 1190, 2390), "3": (490, 1350, 1690),
}
F4 = 3500.0
BANDWIDTHS = np.array([70.0, 100.0, 140.0, 220.0])  # Hz, of F1..F4 in vowels
# Voiced consonants with formants: kind, (F1, F2, F3).
SONORANTS = {"m": ("nasal", (250, 1000, 2200)), "n": ("nasal", (250, 1500, 2500)),
             "l": ("approximant", (360, 1300, 2700)), "r": ("approximant", (400, 1100, 1600)),
             "w": ("approximant", (300, 700, 2200)), "j": ("approximant", (280, 2200, 3000))}
# Noise consonants: (voiced, noise band low/high Hz, noise level); stops add a closure first.
FRICATIVES = {"s": (False, 4200, 7600, 0.30), "S": (False, 2300, 4600, 0.30),
              "f": (False, 1200, 7600, 0.08), "z": (True, 4200, 7600, 0.18),
              "v": (True, 1200, 7000, 0.06), "h": (False, 0, 0, 0.10)}
STOPS = {"p": (False, 400, 1600), "t": (False, 3300, 6500), "k": (False, 1500, 3200),
         "b": (True, 400, 1600), "d": (True, 3300, 6500), "g": (True, 1500, 3200)}
CONSONANTS = tuple(SONORANTS) + tuple(FRICATIVES) + tuple(STOPS)


class Voice(NamedTuple):
  """One speaker's voice: what stays the same from one utterance to the next."""
  f0: float                 # Hz, mean speaking pitch
  vtl: float                # cm, vocal-tract length: formants scale as REFERENCE_VTL / vtl
  formant_dev: np.ndarray   # (4,) multiplicative deviation of F1..F4 (articulation habits)
  bandwidth_scale: float    # formant bandwidths x this
  jitter: float             # relative s.d. of period-to-period f0
  shimmer: float            # relative s.d. of period-to-period amplitude
  breathiness: float        # aspiration noise mixed into voicing
  open_quotient: float      # fraction of a glottal period the folds are open (spectral tilt)
  rate: float               # speaking rate, x the reference phone durations
  f0_range: float           # semitones: size of pitch accents
  vowel_weights: np.ndarray  # (len(VOWELS),) how often each vowel is used
  consonant_weights: np.ndarray  # (len(CONSONANTS),)


class Session(NamedTuple):
  """A recording's channel (one per video): equaliser, band limits and background noise."""
  tilt_db_per_octave: float
  bumps: np.ndarray     # (k, 3) rows [centre Hz, width octaves, gain dB]
  highpass_hz: float
  lowpass_hz: float
  snr_db: float
  noise_tilt_db_per_octave: float


def random_session(rng: np.random.Generator) -> Session:
  """A random channel: up to 1.5 dB/octave of tilt, +-3 dB resonances, 15-35 dB SNR."""
  bumps = np.stack([np.exp(rng.uniform(np.log(300), np.log(6000), 3)), rng.uniform(0.3, 1.0, 3),
                    rng.uniform(-3, 3, 3)], axis=1)
  return Session(float(rng.uniform(-1.5, 1.0)), bumps, float(rng.uniform(60, 200)),
                 float(rng.uniform(5500, 7800)), float(rng.uniform(15, 35)), float(rng.uniform(-6, 0)))


def _phones(rng, voice: Voice, seconds: float):
  """A random phone string of about `seconds`: (phone, seconds, stressed, pause_before)."""
  vowels, out, total = list(VOWELS), [], 0.0
  p_v = voice.vowel_weights / voice.vowel_weights.sum()
  p_c = voice.consonant_weights / voice.consonant_weights.sum()
  while total < seconds:
    n_syll = int(rng.integers(1, 4))
    stress = int(rng.integers(n_syll))
    pause = bool(out) and rng.random() < 0.25
    for s in range(n_syll):
      onset = rng.choice(CONSONANTS, size=int(rng.choice(3, p=[0.25, 0.6, 0.15])), p=p_c)
      coda = rng.choice(CONSONANTS, size=int(rng.random() < 0.35), p=p_c)
      syllable = [(c, False) for c in onset] + [(rng.choice(vowels, p=p_v), s == stress)]
      syllable += [(c, False) for c in coda]
      for k, (ph, stressed) in enumerate(syllable):
        if ph in VOWELS:
          base = rng.uniform(0.07, 0.14) * (1.5 if stressed else 1.0)
        elif ph in STOPS:
          base = rng.uniform(0.05, 0.09)
        else:
          base = rng.uniform(0.05, 0.11)
        d = base / voice.rate
        out.append((ph, d, stressed, pause and s == 0 and k == 0))
        total += d + (0.2 if pause and s == 0 and k == 0 else 0.0)
  return out


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
  """Moving average over `n` samples along axis 0 (edges padded by repetition)."""
  if n <= 1:
    return x
  pad = [(n // 2, n - 1 - n // 2)] + [(0, 0)] * (x.ndim - 1)
  c = np.cumsum(np.pad(x, pad, mode="edge"), axis=0)
  c = np.concatenate([np.zeros_like(c[:1]), c], axis=0)
  return (c[n:] - c[:-n]) / n


def _stft(x: np.ndarray) -> np.ndarray:
  w = np.hanning(N_FFT + 1)[:-1]
  xp = np.pad(x, (N_FFT // 2, N_FFT // 2 + HOP))
  n = 1 + (len(xp) - N_FFT) // HOP
  idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
  return np.fft.rfft(xp[idx] * w, axis=1)


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
  w = np.hanning(N_FFT + 1)[:-1]
  frames = np.fft.irfft(spec, n=N_FFT, axis=1) * w
  out = np.zeros(HOP * (len(frames) - 1) + N_FFT)
  norm = np.zeros_like(out)
  step = N_FFT // HOP
  for k in range(step):  # frames k, k + step, ... tile without overlap: add them as one strip
    sel = frames[k::step]
    a = HOP * k
    out[a:a + sel.size] += sel.ravel()
    norm[a:a + sel.size] += np.tile(w ** 2, len(sel))
  out = out / np.maximum(norm, 1e-3)
  return out[N_FFT // 2:N_FFT // 2 + length]


def _resonances(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
  """(frames, bins) cascade gain of the formants (frames, 4) with bandwidths (frames, 4)."""
  h = np.ones((len(formants), len(freqs)), np.float32)
  f = freqs.astype(np.float32)[None, :]
  for k in range(formants.shape[1]):
    fk, bk = formants[:, k:k + 1].astype(np.float32), bandwidths[:, k:k + 1].astype(np.float32)
    h /= np.sqrt((1 - (f / fk) ** 2) ** 2 + (bk * f / fk ** 2) ** 2)  # = F^2 / sqrt(...)
  return h


def _band(freqs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
  """(frames, bins) smooth band-pass gains between lo and hi (frames,), 0 where lo == hi == 0."""
  f = np.maximum(freqs[None, :], 1.0)
  rise = 1 / (1 + (lo[:, None] / f) ** 6)
  fall = 1 / (1 + (f / np.maximum(hi[:, None], 1.0)) ** 6)
  return np.where(hi[:, None] > 0, rise * fall, 0.0)


def _glottal_source(rng, voice: Voice, f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(flow derivative, open-phase gate) per sample for the f0 track `f0` (Hz per sample)."""
  nominal = np.cumsum(f0 / SAMPLE_RATE)
  periods = int(nominal[-1]) + 2
  jitter = 1 + voice.jitter * rng.standard_normal(periods)
  phase = np.cumsum(f0 * jitter[nominal.astype(np.int64)] / SAMPLE_RATE)
  frac = phase % 1.0
  tp, tn = 0.7 * voice.open_quotient, 0.3 * voice.open_quotient
  opening = frac < tp
  closing = (frac >= tp) & (frac < tp + tn)
  d = np.where(opening, 0.5 * np.pi / tp * np.sin(np.pi * frac / tp), 0.0)
  d = np.where(closing, -np.pi / (2 * tn) * np.sin(np.pi * (frac - tp) / (2 * tn)), d)
  shimmer = 1 + voice.shimmer * rng.standard_normal(int(phase[-1]) + 2)
  return d * shimmer[phase.astype(np.int64)] * f0 / 150.0, (opening | closing).astype(np.float64)


def synthesize(rng: np.random.Generator, voice: Voice, session: Session, n_samples: int):
  """One utterance of random content in `voice`, recorded through `session`.

  Returns:
    (audio, loudness): audio float32 (n_samples,), levelled to -30..-22 dBFS RMS, through the
    session's channel with its noise; loudness (frames,) the clean speech's magnitude every
    HOP samples (it drives the face's mouth: `mouth_opening`).
  """
  seconds = n_samples / SAMPLE_RATE
  lead = rng.uniform(0.04, 0.15)
  phones = _phones(rng, voice, seconds)
  # Per-sample controls: voicing, tract noise (aspiration), frication noise; per-sample phone index.
  voice_amp = np.zeros(n_samples)
  asp_amp = np.zeros(n_samples)
  fric_amp = np.zeros(n_samples)
  seg = np.full(n_samples, -1)
  specs = []  # per phone: (F1..F3 or None, noise lo, noise hi, nasal)
  t = int(lead * SAMPLE_RATE)
  accents = []
  for i, (ph, dur, stressed, pause) in enumerate(phones):
    if pause:
      t += int(rng.uniform(0.1, 0.3) * SAMPLE_RATE)
    n = max(1, int(dur * SAMPLE_RATE))
    a, b = min(t, n_samples), min(t + n, n_samples)
    nxt = next((p for p, *_ in phones[i + 1:] if p in VOWELS), "V")
    if ph in VOWELS:
      voice_amp[a:b] = 1.2 if stressed else 1.0
      specs.append((VOWELS[ph], 0, 0, False))
      if stressed:
        accents.append(((a + b) / 2, (b - a) / 2))
    elif ph in SONORANTS:
      kind, fmts = SONORANTS[ph]
      voice_amp[a:b] = 0.45 if kind == "nasal" else 0.7
      specs.append((fmts, 0, 0, kind == "nasal"))
    elif ph in FRICATIVES:
      voiced, lo, hi, level = FRICATIVES[ph]
      if ph == "h":
        asp_amp[a:b] = level
      else:
        fric_amp[a:b] = level
        voice_amp[a:b] = 0.35 if voiced else 0.0
      specs.append((VOWELS[nxt], lo, hi, False))
    else:  # stop: closure (a voice bar if voiced), burst, aspiration if voiceless
      voiced, lo, hi = STOPS[ph]
      burst = min(b, a + int(0.012 * SAMPLE_RATE))
      close = max(a, burst - int(0.012 * SAMPLE_RATE) - int(0.6 * (b - a)))
      voice_amp[a:close] = 0.08 if voiced else 0.0
      fric_amp[close:burst] = 0.5
      if voiced:
        voice_amp[burst:b] = 0.6
      else:
        asp_amp[burst:b] = 0.15
      specs.append((VOWELS[nxt], lo, hi, False))
    seg[a:b] = len(specs) - 1
    t += n
    if t >= n_samples:
      break
  ramp = int(0.006 * SAMPLE_RATE)  # 6 ms onsets and offsets
  voice_amp, asp_amp, fric_amp = (_smooth(x, ramp) for x in (voice_amp, asp_amp, fric_amp))

  # f0: declination over the utterance, pitch accents on stressed vowels, slow drift, final rise.
  ts = np.arange(n_samples)
  st = np.linspace(1.0, -2.0, n_samples) + rng.normal(0, 0.7)
  for centre, half in accents:
    half = max(half, 1.0)
    a, b = max(0, int(centre - 4 * half)), min(n_samples, int(centre + 4 * half) + 1)
    st[a:b] += voice.f0_range * rng.uniform(0.4, 1.0) * np.exp(-0.5 * ((ts[a:b] - centre) / half) ** 2)
  drift = np.interp(ts, np.linspace(0, n_samples, 9), rng.normal(0, 0.6, 9))
  st += drift
  if rng.random() < 0.2:
    st += 4.0 * np.clip((ts - 0.8 * n_samples) / (0.2 * n_samples), 0, 1)
  f0 = voice.f0 * 2 ** (st / 12)
  flow, gate = _glottal_source(rng, voice, f0)
  breath = rng.standard_normal(n_samples) * (0.3 + 0.7 * gate)
  tract_stft = _stft((voice_amp * (flow + voice.breathiness * 3.0 * breath)).astype(np.float32))
  n_frames, n_bins = tract_stft.shape
  centres = np.clip(np.arange(n_frames) * HOP, 0, n_samples - 1)
  # Noise sources are drawn in the STFT domain (white noise has i.i.d. complex Gaussian bins of
  # variance sum(window^2)) and gated per frame: bursts and fricatives are longer than a hop.
  # One draw serves all three sources, read in three orders (bins stay i.i.d. in each).
  sd = np.float32(np.sqrt(0.375 * N_FFT / 2))
  white = rng.standard_normal((n_frames, n_bins, 2), np.float32).view(np.complex64)[..., 0] * sd
  tract_stft += white * (3.0 * asp_amp[centres])[:, None]

  # Frame-wise spectra: formants glide (30 ms smoothing), noise bands per phone.
  seg_f = seg[centres]
  scale = (REFERENCE_VTL / voice.vtl) * voice.formant_dev
  fmts = np.array([list(VOWELS["V"]) + [F4] if k < 0 else list(specs[k][0]) + [F4] for k in seg_f])
  fmts = _smooth(fmts * scale[None, :], 4)
  nasal = np.array([k >= 0 and specs[k][3] for k in seg_f], np.float64)
  bw = BANDWIDTHS[None, :] * voice.bandwidth_scale * (1 + 1.5 * _smooth(nasal, 2)[:, None])
  lo = np.array([specs[k][1] if k >= 0 else 0 for k in seg_f], np.float64)
  hi = np.array([specs[k][2] if k >= 0 else 0 for k in seg_f], np.float64)
  freqs = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
  clean = tract_stft * _resonances(freqs, fmts, bw)
  fric = np.flatnonzero((hi > 0) & (fric_amp[centres] > 0))
  clean[fric] += white[::-1][fric] * (_band(freqs, lo[fric], hi[fric]) * 24.0
                                      * fric_amp[centres][fric, None]).astype(np.float32)
  loudness = np.sqrt(np.sum(np.abs(clean) ** 2, axis=1))

  # The channel: tilt and bumps in dB, band limits; then coloured background noise at the SNR.
  f = np.maximum(freqs, 20.0)
  gain_db = session.tilt_db_per_octave * np.log2(f / 1000.0)
  for centre, width, g in session.bumps:
    gain_db += g * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
  gain = 10 ** (gain_db / 20) / (1 + (session.highpass_hz / f) ** 4) / (1 + (f / session.lowpass_hz) ** 8)
  speech = clean * gain[None, :].astype(np.float32)
  noise = white[:, ::-1] * (10 ** (session.noise_tilt_db_per_octave * np.log2(f / 1000.0) / 20))[None, :]
  energy = lambda x: float(np.sum(np.abs(x) ** 2)) + 1e-12
  noise *= np.sqrt(energy(speech) / energy(noise) * 10 ** (-session.snr_db / 10))
  audio = _istft(speech + noise, n_samples)
  audio *= 10 ** (rng.uniform(-30, -22) / 20) / (np.sqrt(np.mean(audio ** 2)) + 1e-12)
  peak = np.max(np.abs(audio))
  if peak > 0.95:
    audio *= 0.95 / peak
  return audio.astype(np.float32), loudness


def mouth_opening(loudness: np.ndarray, times) -> np.ndarray:
  """How open the mouth is at `times` (seconds), in [0, 1]: the speech's frame loudness
  (`synthesize`'s second output, one value per HOP samples) at those times, over its 95th
  percentile, smoothed over 40 ms."""
  smooth = _smooth(loudness, 5)
  ref = np.percentile(smooth, 95) + 1e-9
  at = np.interp(np.asarray(times) * SAMPLE_RATE / HOP, np.arange(len(smooth)), smooth)
  return np.clip(at / ref, 0.0, 1.0)
