"""ledref.reference stays the readable spec: short enough to read in one sitting, with nothing in it that
exists only for speed, and independent of the fast path."""

import ast
import re
from pathlib import Path

import ledref.reference

PACKAGE = Path(ledref.reference.__file__).parent
FORBIDDEN = ["workspace", "thread", "out=", "in_blocks", "by_rows", "matmul_into", "exp_inplace", "madvise",
             "namespace_name", "__name__", "import numpy"]


def sources():
    return {path.name: path.read_text() for path in sorted(PACKAGE.glob("*.py"))}


def test_at_most_600_physical_lines():
    lines = {name: text.count("\n") for name, text in sources().items()}
    assert sum(lines.values()) <= 600, lines


def test_nothing_that_exists_for_speed():
    found = [(name, word) for name, text in sources().items() for word in FORBIDDEN if word in text.lower()]
    assert not found, found


def test_imports_only_the_array_api_and_itself():
    for name, text in sources().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert module in ("math", "array_api_compat", "..outputs") or re.fullmatch(r"\.\w+", module), \
                    (name, module)
            elif isinstance(node, ast.Import):
                assert all(alias.name == "math" for alias in node.names), (name, [a.name for a in node.names])
