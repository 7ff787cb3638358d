"""Every notebook under colabs/ runs top to bottom (a few training steps) and draws its figures."""
import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colabs", "*.ipynb")))


def test_there_are_notebooks():
  assert NOTEBOOKS, "no notebooks under colabs/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_committed_clean(path):
  """Valid nbformat 4 for the python3 kernel, with no stored outputs."""
  nb = nbformat.read(path, as_version=4)
  nbformat.validate(nb)
  assert nb.metadata.kernelspec.name == "python3"
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, data_dir, monkeypatch):
  # The kernel inherits this process's environment, conftest's 8 CPU devices included.
  monkeypatch.setenv("MIRJAX_DATA_DIR", data_dir)  # the session's shared TFDS dir
  monkeypatch.setenv("MIRJAX_NOTEBOOK_STEPS", "12")  # a few steps instead of a minute's worth
  nb = nbformat.read(path, as_version=4)
  # Run from the notebook's own folder, as a user opening it locally would.
  NotebookClient(nb, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": os.path.dirname(path)}}).execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  assert not [o for o in outputs if o.get("output_type") == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) >= 3  # log-mel, learned filters, per-tag ROC-AUC
