"""examples/quickstart.ipynb runs top to bottom against the sandbox, in-process (nbclient) and with
the command docs/guides/jupyter.md gives, stays within the API's limits, and is committed with its outputs (the
slots chart included) so that it reads on a code host without running it. Also the chart itself:
``slots_chart`` draws free slots per day and instructor as SVG."""

from __future__ import annotations

import html
import itertools
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from perfectgym_appointments_client import (
    Instructor,
    Slot,
    SlotsChart,
    parse_zoned_datetime,
    slots_chart,
    slots_per_day_and_instructor,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(svg: str) -> ET.Element:
    """The chart as XML: a parse error here is a chart no browser would draw."""
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well-formed


def bars(root: ET.Element) -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]


def legend_entries(root: ET.Element) -> list[ET.Element]:
    return [group for group in root.iter(f"{SVG}g") if group.get("class") == "legend"]


def legend(root: ET.Element) -> list[str]:
    """The instructors the legend names, in order (each entry's tooltip is the full name)."""
    return ["".join(entry.find(f"{SVG}title").itertext()) for entry in legend_entries(root)]  # type: ignore[union-attr]


def texts(root: ET.Element) -> list[str]:
    return ["".join(text.itertext()) for text in root.iter(f"{SVG}text")]


def code_outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def cell_output(notebook: nbformat.NotebookNode, call: str, mime: str) -> str:
    """What the one code cell that makes ``call`` shows as ``mime``."""
    [cell] = [cell for cell in notebook.cells if cell.cell_type == "code" and call in cell.source]
    [data] = [o["data"][mime] for o in cell.get("outputs", []) if mime in o.get("data", {})]
    return str(data)


def assert_chart_output(notebook: nbformat.NotebookNode) -> None:
    """The notebook shows the slots chart: an SVG whose bars and legend match the table above it."""
    svg = cell_output(notebook, "slots_chart(", "image/svg+xml")
    root = parse_svg(svg)
    assert root.tag == f"{SVG}svg"
    table = cell_output(notebook, "slots_per_day_and_instructor(", "text/html")
    instructors = [html.unescape(name) for name in re.findall(r"<th>(.*?)</th>", table)[1:]]
    assert instructors, "the sandbox's slots have instructors"
    assert legend(root) == instructors  # one legend entry (and colour) per column of the table
    cells = [
        int(value)
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1])
        for value in re.findall(r"<td>(\d+)</td>", row)
    ]
    assert len(bars(root)) == sum(1 for value in cells if value) > 0  # a bar per non-zero count
    assert any(text.startswith("Mon") or text.startswith("Tue") for text in texts(root))  # day labels


def execute(notebook: nbformat.NotebookNode, workdir: Path) -> None:
    """Run every cell from scratch (the saved outputs play no part), raising CellExecutionError on
    any failing cell (the cells assert what they show). No timestamps: a re-run changes only what
    the cells show."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    ).execute()


def save_executed_notebook() -> None:
    """``python tests/test_notebook.py``: run the notebook and save it with its outputs, as committed."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as workdir:  # outside the clone: no local path in the outputs
        execute(notebook, Path(workdir))
    nbformat.write(notebook, NOTEBOOK)


def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    execute(notebook, tmp_path)
    outputs = code_outputs(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<table>" in h for h in html), "models render as tables"
    text = "".join(o.get("text", "") for o in outputs)
    assert "bookable appointments" in text
    assert "booked" in text
    assert_chart_output(notebook)


def test_the_committed_notebook_has_its_outputs() -> None:
    """examples/quickstart.ipynb is saved executed, top to bottom, so a code host shows the results
    (``python tests/test_notebook.py`` saves it so after a change)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "one run, in order"
    assert all(cell.outputs for cell in code[:-1])  # every cell but the closing `await stack.aclose()`
    outputs = code_outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    assert_chart_output(notebook)
    saved = json.dumps([cell.outputs for cell in code] + [notebook.metadata])
    for local in {str(ROOT), str(Path.home()), tempfile.gettempdir(), "/home/", "/Users/"}:
        assert local not in saved, f"the saved outputs mention a local path: {local}"
    assert set(re.findall(r"api_key='([^']*)'", saved)) == {"***"}  # the client's repr hides the key
    assert "X-API-KEY" not in saved
    assert not [cell.metadata for cell in notebook.cells if "execution" in cell.metadata]  # no timestamps


def readme_notebook_command() -> str:
    guide = (ROOT / "docs" / "guides" / "jupyter.md").read_text(encoding="utf-8")
    notebook_section = guide.split("\n## The notebook\n", 1)[1].split("\n## ", 1)[0]
    [command] = [
        line
        for line in notebook_section.splitlines()
        if "examples/quickstart.ipynb" in line and "`" not in line
    ]
    return command


def run_readme_command(workdir: Path) -> subprocess.CompletedProcess[str]:
    """The guide's command, word for word, in a directory laid out like the clone: examples/ and .venv."""
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
    assert copy.read_bytes() == before  # the guide: the notebook file is left unchanged


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


# The chart: slots_chart(slots) -> SlotsChart, shown by Jupyter through _repr_svg_.

ANNA = Instructor(id=1, first_name="Anna", last_name="Berg", public_name="Coach Anna")
BEN = Instructor(id=2, first_name="Ben", last_name="Cole")  # no public name: "Ben Cole"


def slot(start: str, *instructors: Instructor) -> Slot:
    begin = parse_zoned_datetime(start)
    return Slot(
        start_date_time=begin,
        end_date_time=begin + timedelta(minutes=30),
        instructors=list(instructors) if instructors else None,
    )


def two_days() -> list[Slot]:
    return [
        slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]", ANNA),
        slot("2026-11-30T08:30:00.000+01:00[Europe/Berlin]", ANNA, BEN),  # counts for both
        slot("2026-11-30T09:00:00.000+01:00[Europe/Berlin]", BEN),
        # Tuesday in Berlin, still Monday in UTC (23:30Z): the studio's day counts.
        slot("2026-12-01T00:30:00.000+01:00[Europe/Berlin]", ANNA),
        slot("2026-12-01T10:00:00.000+01:00[Europe/Berlin]", ANNA),
    ]


def test_slots_chart_two_days_two_instructors() -> None:
    chart = slots_chart(two_days())
    assert chart.days == (date(2026, 11, 30), date(2026, 12, 1))
    assert chart.instructors == ("Ben Cole", "Coach Anna")
    assert chart.zone == "Europe/Berlin"
    assert not chart.stacked  # few bars: side by side
    assert chart.count(date(2026, 12, 1), "Coach Anna") == 2  # 00:30 is Tuesday in Berlin
    assert chart.count(date(2026, 12, 1), "Ben Cole") == 0
    assert repr(chart) == "SlotsChart(2 days 2026-11-30..2026-12-01, 2 instructors, zone='Europe/Berlin')"
    assert chart._repr_svg_() == chart.to_svg()

    root = parse_svg(chart.to_svg())
    drawn = bars(root)
    assert len(drawn) == 3  # Mon: Ben 2, Anna 2; Tue: Anna 2 (no bar for Ben's 0)
    assert {float(bar.get("height", "")) for bar in drawn} == {float(drawn[0].get("height", ""))}  # all 2
    assert len({bar.get("fill") for bar in drawn}) == 2  # a colour per instructor
    tips = ["".join(bar.itertext()) for bar in drawn]
    assert "Coach Anna, Tue 2026-12-01: 2 free slots" in tips
    assert legend(root) == ["Ben Cole", "Coach Anna"]
    labels = texts(root)
    for label in ("Mon", "30 Nov", "Tue", "1 Dec", "Ben Cole (2)", "Coach Anna (4)", "day (Europe/Berlin)"):
        assert label in labels
    assert "5 free slots, Mon 30 Nov 2026 \u2013 Tue 1 Dec 2026" in labels  # slots, each counted once
    assert "free slots per instructor" in labels  # the value axis

    # The table says the same.
    assert slots_per_day_and_instructor(two_days()) == [
        {"day": "Mon 2026-11-30", "Ben Cole": 2, "Coach Anna": 2},
        {"day": "Tue 2026-12-01", "Ben Cole": 0, "Coach Anna": 2},
    ]


def test_slots_chart_is_deterministic_and_sorts_by_instant() -> None:
    svg = slots_chart(two_days(), title="PT").to_svg()
    shuffled = two_days()
    random.Random(7).shuffle(shuffled)
    assert slots_chart(shuffled, title="PT").to_svg() == svg
    assert slots_chart(reversed(two_days()), title="PT").to_svg() == svg
    assert re.search(r"\bid=", svg) is None  # nothing that would differ between two drawings


def test_slots_chart_stacked() -> None:
    root = parse_svg(slots_chart(two_days(), stacked=True).to_svg())
    assert len(bars(root)) == 3
    labels = texts(root)
    assert "4" in labels  # Monday's stack
    assert "free slots, all instructors" in labels


def test_slots_chart_counts_the_studio_day_across_dst() -> None:
    """The autumn change repeats 02:30 in Berlin: both slots are on Sunday 25 October, and the
    days between the first slot and the last are all on the axis (Monday has none)."""
    chart = slots_chart(
        [
            slot("2026-10-27T10:00:00.000+01:00[Europe/Berlin]", ANNA),
            slot("2026-10-25T02:30:00.000+01:00[Europe/Berlin]", ANNA),  # the second 02:30
            slot("2026-10-25T02:30:00.000+02:00[Europe/Berlin]", ANNA),  # the first 02:30
        ]
    )
    assert chart.days == (date(2026, 10, 25), date(2026, 10, 26), date(2026, 10, 27))
    assert chart.count(date(2026, 10, 25), "Coach Anna") == 2
    root = parse_svg(chart.to_svg())
    assert len(bars(root)) == 2
    assert {"Sun", "Mon", "Tue"} <= set(texts(root))


def test_slots_chart_names_the_zone_of_its_days() -> None:
    offset_only = slot("2026-11-30T08:00:00.000+01:00", ANNA)  # no [zone]: a fixed offset
    chart = slots_chart([offset_only])
    assert chart.zone == "UTC+01:00"
    assert "day (UTC+01:00)" in texts(parse_svg(chart.to_svg()))
    # Days from two zones: each slot's own day, and the axis names no zone.
    mixed = slots_chart([offset_only, slot("2026-11-30T09:00:00.000+01:00[Europe/Berlin]", BEN)])
    assert mixed.zone is None
    assert mixed.days == (date(2026, 11, 30),)
    assert "day" in texts(parse_svg(mixed.to_svg()))


def test_slots_chart_escapes_names_and_titles() -> None:
    evil = Instructor(id=3, first_name="x", last_name="y", public_name="<script>alert(1)</script>")
    bell = Instructor(id=4, first_name="Bell\x07", last_name='"Quote" & Co')
    chart = slots_chart(
        [slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]", evil, bell)], title="Yoga & <b>Pilates</b>"
    )
    svg = chart.to_svg()
    assert "<script" not in svg
    assert "<b>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    root = parse_svg(svg)  # well-formed: the control character is replaced, not copied
    assert {element.tag for element in root.iter()} <= {
        f"{SVG}{tag}" for tag in ("svg", "title", "rect", "text", "line", "g")
    }
    assert legend(root) == ["<script>alert(1)</script>", 'Bell\ufffd "Quote" & Co']
    assert "Yoga & <b>Pilates</b>: free slots per day and instructor" in texts(root)


def test_slots_chart_without_slots() -> None:
    chart = slots_chart([])
    assert repr(chart) == "SlotsChart(no slots)"
    assert chart.days == ()
    assert chart.instructors == ()
    root = parse_svg(chart._repr_svg_())
    assert not bars(root)
    assert "no slots" in texts(root)
    assert slots_per_day_and_instructor([]) == []


def test_slots_chart_stays_readable_for_four_weeks_and_many_instructors() -> None:
    """28 days and 12 instructors (more than the palette's 10 colours): too many bars to put side by
    side, so they are stacked; day labels never overlap, every instructor has a colour of their own,
    and the chart stays a sensible width."""
    people = [Instructor(id=i, first_name=f"Person{i:02d}", last_name="Z") for i in range(12)]
    start = parse_zoned_datetime("2026-11-02T08:00:00.000+01:00[Europe/Berlin]")
    slots = [
        Slot(
            start_date_time=start + timedelta(days=d, hours=h),
            end_date_time=start + timedelta(days=d, hours=h + 1),
            instructors=[people[(d + h) % 12]],
        )
        for d in range(28)
        for h in range(6)
    ]
    chart = slots_chart(slots)
    assert isinstance(chart, SlotsChart)
    assert chart.stacked
    root = parse_svg(chart.to_svg())
    assert int(root.get("width", "0")) <= 1200
    assert len(bars(root)) == len({(d, (d + h) % 12) for d in range(28) for h in range(6)})
    swatches = {rect.get("fill") for entry in legend_entries(root) for rect in entry.iter(f"{SVG}rect")}
    assert len(swatches) == 12
    weekdays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    xs = [float(t.get("x", "")) for t in root.iter(f"{SVG}text") if "".join(t.itertext()) in weekdays]
    assert len(xs) >= 7
    assert min(b - a for a, b in itertools.pairwise(xs)) >= 50  # a day label is about 50 px wide
    # Asked for side by side, it still draws every bar.
    assert len(bars(parse_svg(slots_chart(slots, stacked=False).to_svg()))) == len(bars(root))


if __name__ == "__main__":
    save_executed_notebook()
