"""A Sphinx directive that documents every `ledref` subcommand from the argument parser itself, so the
reference cannot drift from the command:

    ```{ledref-cli}
    ```
"""

import argparse

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def subcommands(parser):
    """(name, one-line help, subparser) for each subcommand, in the order the parser defines them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


class LedrefCli(SphinxDirective):
    """One section per subcommand: its purpose, then `ledref <command> --help` as the command prints it."""

    def run(self):
        from ledref.cli import build_parser

        lines = []
        for name, summary, sub in subcommands(build_parser()):
            sub.prog = f"ledref {name}"
            sub.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100, max_help_position=34)
            title = f"ledref {name}"
            lines += [title, "-" * len(title), ""]
            if summary:
                lines += [summary[0].upper() + summary[1:] + ".", ""]
            lines += [".. code-block:: text", ""]
            lines += ["   " + line for line in sub.format_help().rstrip().splitlines()]
            lines.append("")
        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source="ledref.cli.build_parser"), container)
        return container.children


def setup(app):
    app.add_directive("ledref-cli", LedrefCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
