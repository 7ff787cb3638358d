"""python -m mirjax.main --config=configs/embed.py --config.trained=workdirs/melcnn --workdir=workdirs/melcnn_embed

Export a trained model's features at one layer, one vector per clip (mirjax/jobs/embed.py).

  python -m mirjax.main --config=configs/embed.py --config.trained=workdirs/melcnn --config.layer=backend/conv4 --config.splits=train,valid,test --workdir=workdirs/melcnn_embed
  python -m mirjax.main --config=configs/embed.py --config.trained=workdirs/melcnn --config.data.name=folder --config.data.manual_dir=/data/my_songs --config.splits=train --workdir=workdirs/my_songs_embed

Writes WORKDIR/embeddings_<split>.npz (`embeddings` (N, D), `labels`, `index`),
WORKDIR/embeddings_<split>.csv (index, split, tags or label/class) and
WORKDIR/embeddings.json. The layer is a module path ("backend/dense", "frontend") or a sown
value; the default "backend/embedding" is the short-chunk CNN's hidden layer after batch
norm and ReLU (configs/melcnn.py, sincnet.py, modnet.py, ...); a wrong name lists the
model's names with their widths. Each clip is `eval.n_chunks` crops, averaged over time
and over crops. The checkpoint (--config.step) and the data are chosen as in configs/eval.py.
"""
from mirjax import config as base
from mirjax.errors import ConfigError


def get_config(arg=None):
  if arg:
    raise ConfigError(f"configs/embed.py takes no variant (got {arg!r}); set --config.FIELD=VALUE")
  c = base.trained_run_job("embed")
  c.layer = "backend/embedding"  # module path (or sown name) whose output is exported
  return c
