"""mirjax.audio and the LogMel front-end against librosa 0.11, on a chirp plus noise.

Tolerances: complex/linear quantities to 1e-5 of the reference's peak magnitude (float32
FFTs of different libraries agree to ~2e-7); log quantities to 0.01 dB; filter banks to 1e-6.
"""
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from mirjax import audio
from mirjax.frontends.mel import LogMel

REL = 1e-5  # max |ours - librosa| / max |librosa| for linear quantities
DB = 0.01  # max |ours - librosa| in dB for log quantities


def chirp_noise(sr, seconds, seed=0, f0=60.0, f1=None, scale=1.0):
  """A linear chirp from f0 to f1 (default 0.45 sr) plus white noise at -20 dB, float32."""
  f1 = 0.45 * sr if f1 is None else f1
  t = np.arange(int(sr * seconds)) / sr
  phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * seconds))
  noise = np.random.default_rng(seed).standard_normal(t.size)
  return (scale * (np.sin(phase) + 0.1 * noise)).astype(np.float32)


def assert_rel(ours, ref, rel=REL):
  ours, ref = np.asarray(ours), np.asarray(ref)
  assert ours.shape == ref.shape
  err = np.abs(ours - ref).max() / np.abs(ref).max()
  assert err <= rel, f"relative error {err:.3g} > {rel}"


STFT_CASES = [  # n_fft, hop_length, win_length, center, pad_mode
    (512, 256, None, True, "constant"),
    (2048, 512, None, True, "reflect"),
    (500, 128, 400, False, "constant"),
    (256, 300, None, True, "constant"),
    (1024, None, None, True, "reflect"),
]


@pytest.mark.parametrize("frame_length,hop", [(512, 256), (400, 160), (100, 300), (7, 7)])
def test_frame_matches_librosa(frame_length, hop):
  x = chirp_noise(8000, 0.5)
  ref = librosa.util.frame(x, frame_length=frame_length, hop_length=hop).swapaxes(-1, -2)
  np.testing.assert_array_equal(np.asarray(audio.frame(x, frame_length, hop)), ref)


@pytest.mark.parametrize("n_fft,hop,win_length,center,pad_mode", STFT_CASES)
def test_stft_matches_librosa(n_fft, hop, win_length, center, pad_mode):
  x = chirp_noise(16000, 1.3)
  ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win_length, center=center,
                     pad_mode=pad_mode).swapaxes(-1, -2)
  ours = audio.stft(x, n_fft, hop, win_length, center=center, pad_mode=pad_mode)
  assert ours.dtype == jnp.complex64
  assert_rel(ours, ref)
  power = audio.spectrogram(x, n_fft, hop, win_length, center=center, pad_mode=pad_mode,
                            power=1.0)
  assert_rel(power, np.abs(ref))


@pytest.mark.parametrize("kwargs", [
    dict(sr=16000, n_fft=512),
    dict(sr=22050, n_fft=2048, n_mels=40, fmin=30.0, fmax=8000.0, htk=True, norm=None),
    dict(sr=22050, n_fft=1024, n_mels=64, norm=2.0),
    dict(sr=44100, n_fft=4096, n_mels=96, fmin=20.0, norm=1.0),
])
def test_mel_filterbank_matches_librosa(kwargs):
  ours = audio.mel_filterbank(**kwargs)
  assert ours.dtype == np.float32
  np.testing.assert_allclose(ours, librosa.filters.mel(**kwargs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("htk", [False, True])
def test_mel_scale_round_trip(htk):
  f = np.array([0.0, 50.0, 999.0, 1000.0, 1001.0, 8000.0, 20000.0])
  np.testing.assert_allclose(audio.hz_to_mel(f, htk=htk), librosa.hz_to_mel(f, htk=htk),
                             rtol=1e-12)
  np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(f, htk=htk), htk=htk), f,
                             rtol=1e-12, atol=1e-9)
  np.testing.assert_allclose(audio.hz_to_mel(jnp.asarray(f, jnp.float32), htk=htk),
                             librosa.hz_to_mel(f, htk=htk), rtol=1e-5)


@pytest.mark.parametrize("n_fft,hop,win_length,center,pad_mode", STFT_CASES[:3])
def test_melspectrogram_and_log_matches_librosa(n_fft, hop, win_length, center, pad_mode):
  sr = 16000
  x = chirp_noise(sr, 1.3)
  kw = dict(n_fft=n_fft, hop_length=hop, win_length=win_length, center=center,
            pad_mode=pad_mode, n_mels=80, fmin=20.0)
  ref = librosa.feature.melspectrogram(y=x, sr=sr, **kw)
  assert_rel(audio.melspectrogram(x, sr=sr, **kw), ref.T)
  ref_db = librosa.power_to_db(ref).T
  ours_db = audio.log_melspectrogram(x, sr=sr, **kw)
  assert np.abs(np.asarray(ours_db) - ref_db).max() <= DB


def test_melspectrogram_magnitude_htk():
  sr = 22050
  x = chirp_noise(sr, 1.0)
  kw = dict(n_fft=1024, hop_length=256, n_mels=64, power=1.0, htk=True, norm=None)
  assert_rel(audio.melspectrogram(x, sr=sr, **kw),
             librosa.feature.melspectrogram(y=x, sr=sr, **kw).T)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(top_db=None),
    dict(ref=10.0, amin=1e-5, top_db=40.0),
])
def test_power_to_db_matches_librosa(kwargs):
  S = np.random.default_rng(0).exponential(size=(50, 64)).astype(np.float32) ** 6
  np.testing.assert_allclose(audio.power_to_db(S, **kwargs), librosa.power_to_db(S, **kwargs),
                             rtol=0, atol=DB)
  ours = audio.power_to_db(S, ref=jnp.max, top_db=60.0)
  np.testing.assert_allclose(ours, librosa.power_to_db(S, ref=np.max, top_db=60.0), atol=DB)


def test_batch_equals_per_clip_librosa():
  """top_db and ref=max act per example, so clips at very different levels stay independent."""
  sr = 16000
  clips = np.stack([chirp_noise(sr, 1.0, seed=i, scale=s) for i, s in enumerate([1e-3, 1.0, 50.0])])
  kw = dict(n_fft=512, hop_length=256, n_mels=64)
  batch = jax.jit(lambda a: audio.log_melspectrogram(a, sr=sr, ref=jnp.max, top_db=60.0, **kw))(
      clips.reshape(3, 1, -1))
  assert batch.shape[:2] == (3, 1)
  for i, clip in enumerate(clips):
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=sr, **kw), ref=np.max,
                              top_db=60.0).T
    assert np.abs(np.asarray(batch[i, 0]) - ref).max() <= DB
  assert_rel(audio.stft(clips, 512, 256)[2], librosa.stft(clips[2], n_fft=512, hop_length=256).T)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(n_mfcc=13, lifter=22, norm=None, n_fft=1024, hop_length=256, n_mels=40),
    dict(n_mfcc=30, n_fft=512, hop_length=128, n_mels=64, center=False),
])
def test_mfcc_matches_librosa(kwargs):
  sr = 22050
  x = chirp_noise(sr, 1.0)
  ref = librosa.feature.mfcc(y=x, sr=sr, **kwargs).T
  assert_rel(audio.mfcc(x, sr=sr, **kwargs), ref)
  S = librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr)).T
  assert_rel(audio.mfcc(S=S, n_mfcc=20), librosa.feature.mfcc(S=S.T, n_mfcc=20).T)


def test_dct_matches_scipy():
  import scipy.fft
  x = np.random.default_rng(1).standard_normal((3, 17, 40))
  for norm in ["ortho", None]:
    ref = scipy.fft.dct(x, axis=1, norm=norm)
    np.testing.assert_allclose(audio.dct(x, norm=norm, axis=1), ref, atol=1e-4 * np.abs(ref).max())
  np.testing.assert_allclose(audio.dct(x, n=5), scipy.fft.dct(x, norm="ortho")[..., :5], atol=1e-5)


@pytest.mark.parametrize("hop,n_fft", [(256, 512), (160, 400), (600, 512)])
def test_logmel_frontend_contract(hop, n_fft):
  model = LogMel(n_fft=n_fft, hop=hop, n_mels=40)
  for time in [1, hop - 1, hop, hop + 1, 3 * hop, 16000, 16001]:
    x = chirp_noise(16000, time / 16000)[None].repeat(2, 0)
    variables = model.init(jax.random.key(0), x)
    assert not jax.tree_util.tree_leaves(variables)  # no learnable parameters
    y = model.apply(variables, x, train=True)
    assert y.shape == (2, -(-time // hop), 40) and y.dtype == jnp.float32


def test_logmel_frontend_values_and_responses():
  sr, time = 16000, 16000 + 100
  x = chirp_noise(sr, time / sr)
  y = LogMel().apply({}, x[None])[0]
  ref = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=512, hop_length=256, n_mels=128,
                                       fmax=8000.0).T[:-(-time // 256)]
  assert np.abs(np.asarray(y) - 10 * np.log10(ref + 1e-6)).max() <= DB
  responses = LogMel(n_mels=40).frequency_responses(257)["filterbank"]
  assert responses["freqs_hz"].shape == (257,) and responses["freqs_hz"][-1] == sr / 2
  want = librosa.filters.mel(sr=sr, n_fft=512, n_mels=40, fmax=8000.0)
  np.testing.assert_allclose(responses["magnitude"], want, atol=1e-6)
  assert LogMel().frequency_responses()["filterbank"]["magnitude"].shape == (128, 512)


def test_rfft_keeps_batch_sharding_and_differentiates():
  """jnp.fft all-gathers a batch-sharded operand; audio.rfft must not, and must match it."""
  from jax.sharding import AxisType, NamedSharding, PartitionSpec
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
  x = np.stack([chirp_noise(16000, 0.2, seed=i) for i in range(jax.device_count())])
  sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
  f = jax.jit(lambda a: audio.log_melspectrogram(a, sr=16000, n_fft=512, hop_length=256))
  assert "all-gather" not in f.lower(sharded).compile().as_text()
  y = f(sharded)
  assert y.sharding.spec == PartitionSpec("data")
  np.testing.assert_allclose(y, f(x), atol=1e-4)
  frames = audio.frame(x, 256, 128)
  weights = np.arange(129.0, dtype=np.float32)
  loss = lambda fft: lambda a: jnp.sum(jnp.abs(fft(a)) ** 2 * weights)
  want = jax.grad(loss(lambda a: jnp.fft.rfft(a, axis=-1)))(frames)
  np.testing.assert_allclose(jax.grad(loss(audio.rfft))(frames), want, rtol=1e-5,
                             atol=1e-5 * np.abs(want).max())
  np.testing.assert_allclose(jax.vmap(audio.rfft)(frames), np.fft.rfft(frames), atol=1e-4)


@pytest.mark.parametrize("kind,n", [("rfft", None), ("rfft", 96), ("irfft", 126), ("fft", None),
                                    ("ifft", 80)])
def test_every_fft_kind_keeps_batch_sharding_and_differentiates(kind, n):
  """audio.fft of each kind: no all-gather of a batch-sharded operand in the forward or the
  backward pass, and the values and gradients of jnp.fft."""
  from jax.sharding import AxisType, NamedSharding, PartitionSpec
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
  rng = np.random.RandomState(len(kind) + (n or 0))
  x = rng.randn(jax.device_count(), 3, 64).astype(np.float32)
  if kind != "rfft":
    x = (x + 1j * rng.randn(*x.shape)).astype(np.complex64)
  plain = lambda a: getattr(jnp.fft, kind)(a, n, axis=-1)
  out = jax.eval_shape(plain, x)
  weights = jnp.asarray(rng.randn(*out.shape), jnp.float32)
  loss = lambda f: lambda a: jnp.sum(jnp.abs(f(a)) ** 2 * weights)
  sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
  step = jax.jit(jax.value_and_grad(loss(lambda a: audio.fft(a, kind, n))))
  assert "all-gather" not in step.lower(sharded).compile().as_text()
  value, grad = step(sharded)
  assert grad.sharding.spec == PartitionSpec("data")
  want_value, want_grad = jax.value_and_grad(loss(plain))(x)
  scale = float(jnp.sum(jnp.abs(plain(x)) ** 2 * jnp.abs(weights)))  # the loss's terms cancel
  np.testing.assert_allclose(value, want_value, atol=1e-6 * scale)
  np.testing.assert_allclose(grad, want_grad, atol=1e-5 * np.abs(want_grad).max())
  np.testing.assert_allclose(jax.vmap(lambda a: audio.fft(a, kind, n))(x), plain(x),
                             atol=1e-5 * np.abs(plain(x)).max())


def test_fft_names_the_kinds_it_knows():
  with pytest.raises(ValueError, match="irfft"):
    audio.fft(np.zeros(8, np.float32), "dct")
