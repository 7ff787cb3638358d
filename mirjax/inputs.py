"""Named model inputs (DESIGN.md section 7): a batch is a dict of inputs plus its targets.

`INPUTS` are the keys a model may read: "audio" (batch, samples), "frames" (batch,
n_frames, height, width, 3), face crops, "features" (batch, D), summary vectors of a
feature dataset (mirjax/data/features.py), and "tokens" (batch, T) int32 with "style"
(batch,) int32, event tokens and their piece's style (mirjax/data/symbolic.py), and "roll"
(batch, frames, 128), a piano roll aligned with the audio (mirjax/data/aligned.py). The steps hand a model the dict of those the batch
holds (`model_inputs`); a model reads the keys it needs. A new modality is a new key here,
a data source that yields it, and an encoder that reads it; the steps, the per-branch
gradients and the combiner do not change.
"""
from collections.abc import Mapping

INPUTS = ("audio", "frames", "features", "tokens", "style", "roll")


def model_inputs(batch) -> dict:
  """The model inputs of `batch`: its entries named in INPUTS (targets and mask left out)."""
  return {k: batch[k] for k in INPUTS if k in batch}


def audio_of(inputs):
  """The audio of a model's inputs: inputs["audio"], or `inputs` itself when it is an array
  (models may still be applied to an audio array directly)."""
  if not isinstance(inputs, Mapping):
    return inputs
  if "audio" not in inputs:
    raise ValueError(f"this model reads inputs['audio']; the batch has {sorted(inputs)}")
  return inputs["audio"]


def fold_chunks(inputs: dict):
  """(batch, chunks, ...) inputs -> (batch * chunks, ...), and (batch, chunks)."""
  b, c = next(iter(inputs.values())).shape[:2]
  return {k: v.reshape(b * c, *v.shape[2:]) for k, v in inputs.items()}, (b, c)


def first_chunk(batch: dict) -> dict:
  """A copy of `batch` whose inputs keep only their first chunk: (batch, chunks, ...) -> (batch, ...)."""
  return {k: (v[:, 0] if k in INPUTS else v) for k, v in batch.items()}
