"""Pure DSP in jax.numpy; every time-frequency output is time-major (..., frames, bins)."""
from mirjax.audio.mel import hz_to_mel
from mirjax.audio.mel import log_melspectrogram
from mirjax.audio.mel import mel_filterbank
from mirjax.audio.mel import mel_filters_at
from mirjax.audio.mel import mel_frequencies
from mirjax.audio.mel import mel_to_hz
from mirjax.audio.mel import melspectrogram
from mirjax.audio.mel import power_to_db
from mirjax.audio.mfcc import dct
from mirjax.audio.mfcc import dct_basis
from mirjax.audio.mfcc import mfcc
from mirjax.audio.spectral import frame
from mirjax.audio.spectral import get_window
from mirjax.audio.spectral import rfft
from mirjax.audio.spectral import spectrogram
from mirjax.audio.spectral import stft
