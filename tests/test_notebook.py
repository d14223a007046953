"""examples/quickstart.ipynb runs top to bottom against the sandbox, in-process (nbclient) and with
the command README.md gives, and stays within the API's limits."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell (the cells assert what they show)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<table>" in h for h in html), "models render as tables"
    text = "".join(o.get("text", "") for o in outputs)
    assert "bookable appointments" in text
    assert "booked" in text


def readme_notebook_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    notebook_section = readme.split("\n## Notebook\n", 1)[1].split("\n## ", 1)[0]
    [command] = [
        line
        for line in notebook_section.splitlines()
        if "examples/quickstart.ipynb" in line and "`" not in line
    ]
    return command


def run_readme_command(workdir: Path) -> subprocess.CompletedProcess[str]:
    """README's command, word for word, in a directory laid out like the clone: examples/ and .venv."""
    venv = Path(sys.executable).parent.parent  # the venv this test runs in: the one scripts/test made
    (workdir / ".venv").symlink_to(venv, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.defpath  # nothing from the venv on PATH: the command must name it itself
    return subprocess.run(
        shlex.split(readme_notebook_command()),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_command_runs_the_notebook(tmp_path: Path) -> None:
    assert readme_notebook_command() == ".venv/bin/jupyter execute examples/quickstart.ipynb"
    (tmp_path / "examples").mkdir()
    copy = tmp_path / "examples" / "quickstart.ipynb"
    shutil.copy(NOTEBOOK, copy)
    before = copy.read_bytes()
    proc = run_readme_command(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert copy.read_bytes() == before  # README: the notebook file is left unchanged


def test_the_readme_command_fails_when_a_cell_fails(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.insert(2, nbformat.v4.new_code_cell("raise RuntimeError('a failing cell')"))
    (tmp_path / "examples").mkdir()
    nbformat.write(notebook, tmp_path / "examples" / "quickstart.ipynb")
    proc = run_readme_command(tmp_path)
    assert proc.returncode != 0
    assert "a failing cell" in proc.stderr + proc.stdout


def test_notebook_stays_within_the_api_limits() -> None:
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    sizes = re.findall(r"slice_size=(\d+)", code)
    assert sizes, "the notebook lists appointments with an explicit slice size"
    assert all(10 <= int(size) <= 100 for size in sizes), sizes
    assert all(int(days) >= 1 for days in re.findall(r"days_ahead=(\d+)", code))
    # Everything goes through the client, which keeps each request within the API's bounds.
    assert "httpx" not in code
