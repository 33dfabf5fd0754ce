"""Every notebook in notebooks/ runs top to bottom in quick mode and shows a figure.

The notebooks are committed with the outputs of a full run (so the figures show when the
repository is browsed); this executes each one, in memory and without writing it back, in
a fresh kernel with SIM_QUICK=1 (shorter runs, fewer replications) from the notebook's own
directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_exist() -> None:
    assert PATHS, f"no notebooks in {NOTEBOOKS}"


def test_notebooks_are_saved_with_the_outputs_of_a_full_run() -> None:
    """Every code cell ran, in order, without an error, and each notebook shows a figure."""
    for path in PATHS:
        nb = nbformat.read(path, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        counts = [cell.execution_count for cell in code]
        assert counts == list(range(1, len(code) + 1)), f"{path.name}: not run top to bottom"
        outputs = [out for cell in code for out in cell.outputs]
        assert not [out for out in outputs if out.output_type == "error"], path.name
        assert any("image/png" in out.get("data", {}) for out in outputs), path.name
        quick = [out for out in outputs if "SIM_QUICK" in str(out.get("text", ""))]
        assert not quick, f"{path.name}: saved from a quick run"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_QUICK", "1")  # inherited by the kernel the client starts
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if one fails

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for out in outputs if out.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, f"{path.name}: no figure was shown (image/png output)"
