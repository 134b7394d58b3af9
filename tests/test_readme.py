"""The README's usage example and the quickstart run as written."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_quickstart_and_usage_example(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "tiny-led"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "band vs dense reference" in run.stdout
    difference = float(re.search(r"max \|difference\| of logits = (\S+)", run.stdout).group(1))
    assert difference < 1e-10
    example = re.search(r"## Usage\n\n```python\n(.*?)```", README, re.S).group(1)
    run = subprocess.run([sys.executable, "-c", example + "\nassert step.logits.shape == (2, 1, 1000)\n"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    # the transformers-habits example, run after the usage example, does what its comments say
    habits = re.search(r"transformers' habits work\..*?```python\n(.*?)```", README, re.S).group(1)
    first = habits.splitlines()
    probe = "\n".join(first[:2] + ["assert ('encoder_attentions' in out, len(out), list(out)[:2]) == "
                                   "(True, 6, ['logits', 'past_key_values'])"] + first[2:])
    probe += "\nassert embeds.shape == (2, 8, 64) and decoded.last_hidden_state.shape == (2, 2, 64)\n"
    probe += "import ledref\nassert ledref.LEDForConditionalGeneration.from_pretrained('my-led').num_parameters() == " \
             "model.num_parameters()\n"
    run = subprocess.run([sys.executable, "-c", example + probe], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr


def test_layout_lists_every_module():
    """README's Layout section names every module of the package, so that a reader finds each file."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    package = ROOT / "ledref"
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.name == "__init__.py" and relative.parent != Path("."):
            name = f"ledref/{relative.parent.as_posix()}/"
        elif relative.parent == Path("."):
            name = f"ledref/{relative.name}"
        else:
            name = relative.name  # listed under its folder's entry
            folder = f"ledref/{relative.parent.as_posix()}/"
            entry = layout[layout.index(folder):].split("\n- ")[0] if folder in layout else ""
            if f"`{name}`" not in entry:
                missing.append(str(relative))
            continue
        if name != "ledref/__init__.py" and f"`{name}" not in layout:
            missing.append(str(relative))
    assert not missing, f"README's Layout section does not list: {missing}"
