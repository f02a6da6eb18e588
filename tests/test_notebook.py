"""The quick-start notebook runs top to bottom, offline, and shows the contact sheet."""

from __future__ import annotations

import json
import os
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"


def test_quickstart_is_committed_without_outputs():
    nb = json.loads(QUICKSTART.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_quickstart_runs_offline():
    import nbclient
    import nbformat

    os.environ["HF_HUB_OFFLINE"] = "1"  # the kernel inherits the environment: no network
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    # One math thread: the tiny model gains nothing from more, and on a busy CI machine
    # oversubscribed OpenMP threads make it several times slower.
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    nb = nbformat.read(QUICKSTART, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute(env=env)  # raises CellExecutionError on the first failing cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    sheet = next(c for c in code if "contact_sheet(items" in c.source)
    assert any("image/png" in o.get("data", {}) for o in sheet.outputs)
