"""The README's usage example and the quickstart run as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_and_usage_example(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "tiny-led"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "band vs dense reference" in run.stdout
    difference = float(re.search(r"max \|difference\| of logits = (\S+)", run.stdout).group(1))
    assert difference < 1e-10
    example = re.search(r"## Usage\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    run = subprocess.run([sys.executable, "-c", example + "\nassert step.logits.shape == (2, 1, 1000)\n"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
