"""Sphinx configuration of ledref's documentation: MyST pages, the notebooks of ../notebooks rendered (and
executed) by myst-nb and published as .ipynb handouts with their outputs, the API reference from
docstrings, the CLI reference from the argument parser.

    pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import shutil
import sys
import zipfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

import ledref  # noqa: E402  (the installed package; `pip install -e .` makes it this checkout)

project = "ledref"
author = "the ledref authors"
copyright = "the ledref authors, Apache-2.0"
release = version = ledref.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "cli_reference",
]

# The notebooks live in ../notebooks/<track>/ (text files that diff like code); Sphinx reads only its
# source directory, so they are copied to docs/notebooks/<track>/ (ignored by git) at every build, and
# copies of notebooks that no longer exist are removed (they would be pages outside every toctree).
TRACKS = ("student", "engineer")
_notebooks = DOCS / "notebooks"
NOTEBOOKS = {f"notebooks/{track}/{source.stem}": source for track in TRACKS
             for source in sorted((ROOT / "notebooks" / track).glob("[0-9][0-9]_*.md"))}
for _docname, _source in NOTEBOOKS.items():
    _target = DOCS / f"{_docname}.md"
    _target.parent.mkdir(parents=True, exist_ok=True)
    if not _target.exists() or _target.read_bytes() != _source.read_bytes():
        shutil.copyfile(_source, _target)
for _stale in _notebooks.rglob("*.md"):
    if _stale.relative_to(DOCS).with_suffix("").as_posix() not in NOTEBOOKS:
        _stale.unlink()

exclude_patterns = ["_build", "kernels", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"

# MyST
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# myst-nb: execute the notebooks at build time (cached in docs/_build/.jupyter_cache between builds)
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = False
nb_render_markdown_format = "myst"
nb_merge_streams = True

# autodoc: docstrings are reStructuredText; single backquotes mark code, as the docstrings use them
default_role = "code"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"
add_module_names = False

html_theme = "furo"
html_title = f"ledref {release}"
html_static_path = ["_static"]
html_css_files = ["ledref.css"]
html_theme_options = {"source_edit_link": None, "navigation_with_keys": True}


def literal_blocks(app, what, name, obj, options, lines):
    """ledref's docstrings show code as an indented block after a blank line (or a section underline),
    without RST's `::`; mark each such block literal, so that it renders as code, not as a quotation."""
    out, in_block = [], False
    for line in lines:
        indented = line.startswith("    ") and line.strip()
        previous = out[-1].strip() if out else ""
        underline = bool(previous) and set(previous) <= set("-=~^")
        if indented and not in_block and (not previous or underline):
            opener = next((p for p in reversed(out) if p.strip()), "")
            if not opener.rstrip().endswith("::"):
                out += ["", "::", ""] if underline else ["::", ""]
            in_block = True
        elif line.strip() and not line.startswith(" "):
            in_block = False
        out.append(line)
    lines[:] = out


def plain_bars(app, what, name, obj, options, lines):
    """A `|` in prose (|x|, |i - j| <= w) is text, not an RST substitution: escape it outside code spans and
    literal blocks (run after literal_blocks, which marks them)."""
    in_block = False
    for n, line in enumerate(lines):
        if line.strip() == "::":
            in_block = True
        elif line.strip() and not line.startswith(" "):
            in_block = False
        if in_block or "|" not in line:
            continue
        parts = line.split("`")  # even parts are outside code spans
        lines[n] = "`".join(p.replace("|", "\\|") if i % 2 == 0 else p for i, p in enumerate(parts))


# Handouts: myst-nb writes every notebook it executes, outputs included, to <outdir>/../jupyter_execute/;
# each is published beside its page (notebooks/<track>/<name>.ipynb), linked under the page's title, and
# each track also as one zip (notebooks/ledref-<track>-notebooks.zip), linked from the tutorials page.
HANDOUT_LINK = ('<p class="handout">Download this notebook with its outputs: '
                '<a href="{name}.ipynb" download>{name}.ipynb</a> (solutions folded; open it in Jupyter).</p>')


def handout_link(app, doctree, docname):
    """Under the title of a notebook's page, the link to its .ipynb handout."""
    from docutils import nodes
    if docname not in NOTEBOOKS or app.builder.format != "html":
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    link = nodes.raw("", HANDOUT_LINK.format(name=docname.rsplit("/", 1)[-1]), format="html")
    section.insert(section.first_child_matching_class(nodes.title) + 1, link)


def publish_handouts(app, exception):
    """Copy the executed notebooks into the site; a notebook without its executed copy, or one with a code
    cell that was not run, fails the build."""
    if exception is not None or app.builder.format != "html":
        return
    import nbformat
    executed = Path(app.outdir).parent / "jupyter_execute"
    for track in TRACKS:
        zipped = Path(app.outdir) / "notebooks" / f"ledref-{track}-notebooks.zip"
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
            for docname in (d for d in NOTEBOOKS if d.startswith(f"notebooks/{track}/")):
                source = executed / f"{docname}.ipynb"
                if not source.is_file():
                    raise RuntimeError(f"no executed notebook at {source}: cannot publish the handout of {docname}")
                notebook = nbformat.read(source, as_version=4)
                unrun = [i for i, cell in enumerate(notebook.cells)
                         if cell.cell_type == "code" and cell.get("execution_count") is None]
                if unrun:
                    raise RuntimeError(f"{source}: code cells {unrun} were not executed")
                target = Path(app.outdir) / f"{docname}.ipynb"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                archive.write(source, f"ledref-{track}-notebooks/{Path(docname).name}.ipynb")


def setup(app):
    app.connect("autodoc-process-docstring", literal_blocks)
    app.connect("autodoc-process-docstring", plain_bars)
    app.connect("doctree-resolved", handout_link)
    app.connect("build-finished", publish_handouts)
