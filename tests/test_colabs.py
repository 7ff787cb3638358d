"""Every notebook under colabs/ runs top to bottom (a few training steps) and draws its figures."""
import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colabs", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, data_dir, monkeypatch):
  monkeypatch.setenv("MIRJAX_DATA_DIR", data_dir)  # the kernel inherits this environment
  monkeypatch.setenv("MIRJAX_NOTEBOOK_STEPS", "12")
  nb = nbformat.read(path, as_version=4)
  NotebookClient(nb, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": os.path.dirname(path)}}).execute()
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
  assert len(images) >= 3  # log-mel, learned filters, per-tag ROC-AUC
  assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
