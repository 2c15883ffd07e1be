"""The two notebooks run headless on the real data and are stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["EDA.ipynb", "Model.ipynb"])
def test_notebook_runs_headless(name, tmp_path):
    from tests.fakes.shared_data import require_data

    require_data()
    path = NOTEBOOKS / name
    stored = nbformat.read(path, as_version=4)
    code_cells = [c for c in stored.cells if c.cell_type == "code"]
    assert code_cells, "the notebook has code"
    assert all(not c.outputs and c.execution_count is None for c in code_cells), (
        f"{name} is stored with outputs: clear them before committing"
    )
    client = NotebookClient(
        stored, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in stored.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors
    # every code cell ran and the last cell produced output (a map or a table)
    assert all(c.execution_count for c in stored.cells if c.cell_type == "code")
    assert stored.cells[-1].outputs


def test_notebooks_use_only_the_public_api():
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        assert "import geo_crime as gc" in source
        assert "from geo_crime" not in source and "import geo_crime." not in source, path.name
