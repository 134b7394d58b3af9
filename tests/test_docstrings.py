"""Every public function and class of ledref has a docstring, and the API reference of docs/ documents every
module and every name `import ledref` exports (the site shows what the docstrings say, so none may be missing).

Public: a module-level function or class defined in the module (not imported into it) whose name does not
start with an underscore, and the public methods, class methods, static methods and properties defined in
such a class. `ledref.cli` is documented by the command's own help (the CLI reference), not here.
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import ledref

API = Path(__file__).resolve().parent.parent / "docs" / "api"
NOT_IN_API_REFERENCE = {"ledref.__main__", "ledref.cli"}


def modules():
    names = ["ledref"] + [m.name for m in pkgutil.walk_packages(ledref.__path__, prefix="ledref.")]
    return [importlib.import_module(n) for n in sorted(names) if n not in NOT_IN_API_REFERENCE]


def has_doc(obj):
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return bool(doc and doc.strip())


def class_members(cls):
    """(name, object with the docstring) of the public callables and properties a class defines itself."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            yield name, value.__func__
        elif isinstance(value, property) or inspect.isfunction(value):
            yield name, value


def undocumented(module):
    missing = [] if has_doc(module) else [f"{module.__name__} (module docstring)"]
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) != module.__name__:
            continue  # imported from elsewhere: checked in its own module
        if not has_doc(obj):
            missing.append(f"{module.__name__}.{name}")
        if inspect.isclass(obj):
            missing += [f"{module.__name__}.{name}.{member}" for member, value in class_members(obj)
                        if not has_doc(value)]
    return missing


def test_every_public_name_has_a_docstring():
    missing = [name for module in modules() for name in undocumented(module)]
    assert not missing, "public names without a docstring:\n  " + "\n  ".join(missing)


def test_the_api_reference_documents_every_module():
    documented = set()
    for page in API.glob("*.md"):
        documented |= set(re.findall(r"\.\. automodule:: (ledref[\w.]*)", page.read_text()))
    wanted = {m.__name__ for m in modules()}
    assert wanted <= documented, f"modules missing from docs/api/: {sorted(wanted - documented)}"


def test_the_api_index_lists_every_export():
    index = (API / "index.md").read_text()
    missing = [name for name in ledref.__all__ if f"`ledref.{name} <" not in index]
    assert not missing, f"docs/api/index.md does not list: {missing}"
