"""The teaching notebooks of notebooks/ (MyST markdown, read by jupytext) execute from the first cell to the
last in a fresh kernel, offline, without an error, a warning or an output that shows nothing; every student
notebook has at least two exercises, each followed by its solution, folded on the site and executed."""

import functools
import re
from pathlib import Path

import pytest

from conftest import require

ROOT = Path(__file__).resolve().parent.parent / "notebooks"
STUDENT = sorted((ROOT / "student").glob("[0-9][0-9]_*.md"))
ENGINEER = sorted((ROOT / "engineer").glob("[0-9][0-9]_*.md"))
NOTEBOOKS = STUDENT + ENGINEER
EXERCISE = re.compile(r"^```\{admonition\} Exercise [0-9]+\.[0-9]+: .+\n:class: exercise\n", re.MULTILINE)
EMPTY = {"[]", "()", "{}", "set()", "''", '""', "array([], dtype=float64)"}


def ids(paths):
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def test_there_are_both_tracks():
    assert len(STUDENT) >= 5 and len(ENGINEER) >= 2, ids(NOTEBOOKS)
    assert not list(ROOT.glob("*.md")), "notebooks belong in notebooks/student/ or notebooks/engineer/"


@functools.cache
def executed(path):
    """The notebook at `path`, executed once per test session."""
    jupytext = require("jupytext")
    nbclient = require("nbclient")
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    return notebook


def texts(output):
    """The text an output shows: a stream's, or the plain-text form of a result."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return output.get("data", {}).get("text/plain", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_notebook_executes(path):
    notebook = executed(path)
    problems = []
    for n, cell in enumerate(notebook.cells):
        outputs = cell.get("outputs", [])
        for output in outputs:
            if output.get("output_type") == "error":
                problems.append(f"cell {n}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                problems.append(f"cell {n} wrote to stderr: {output.get('text', '')[:300]!r}")
        printed = "".join(texts(o) for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
        results = [texts(o) for o in outputs if o.get("output_type") == "execute_result"]
        for shown in ([printed] if printed else []) + results:  # a print may arrive in pieces: judged whole
            lines = [line.strip() for line in shown.splitlines() if line.strip()]
            if not lines or any(line in EMPTY for line in lines):
                problems.append(f"cell {n} shows nothing: {shown[:300]!r}")
    assert not problems, "\n".join(problems)


def exercises(notebook):
    """(exercise title, the code cells between it and the next exercise) for every exercise of a notebook."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            found += [[match.group(0).splitlines()[0], []] for match in EXERCISE.finditer(cell.source)]
        elif found:
            found[-1][1].append(cell)
    return found


@pytest.mark.parametrize("path", STUDENT, ids=ids(STUDENT))
def test_student_notebook_has_exercises_with_solutions(path):
    """At least two exercises; each followed by a solution: a code cell tagged `solution`, folded on the site
    (myst-nb's hide-cell) and in Jupyter (source_hidden), that runs and shows its result."""
    jupytext = require("jupytext")
    found = exercises(jupytext.read(path))
    assert len(found) >= 2, f"{path.name}: {len(found)} exercises"
    for title, cells in found:
        solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
        assert len(solutions) == 1, f"{path.name}, {title}: {len(solutions)} solution cells"
        solution = solutions[0]
        assert "hide-cell" in solution.metadata["tags"], f"{path.name}, {title}: the solution is not folded"
        assert solution.metadata.get("jupyter", {}).get("source_hidden"), f"{path.name}, {title}: not folded in Jupyter"
        assert solution.source.strip()
    ran = exercises(executed(path))
    for title, cells in ran:
        solution = next(c for c in cells if "solution" in c.metadata.get("tags", []))
        assert solution.get("execution_count") and solution.get("outputs"), f"{path.name}, {title}: shows nothing"
