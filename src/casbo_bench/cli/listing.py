"""``casbo-bench list``: the optimizers and problems ``run`` accepts, one line each (module
``listing``: a module named ``list`` would shadow the builtin inside the package)."""

from __future__ import annotations

import argparse

NAME = "list"
HELP = "List the registered optimizers and problems, one line each (what run accepts)."
EXAMPLES = ("casbo-bench list", "casbo-bench list problems")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        choices=("optimizers", "problems"),
        help="list only these (default: both)",
    )


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench import optimizers, problems

    sections = {
        "optimizers": optimizers.describe_optimizers(),
        "problems": problems.describe_problems(),
    }
    for what, lines in sections.items():
        if arguments.what not in (None, what):
            continue
        print(f"{what}:")
        width = max(map(len, lines), default=0)
        for name, summary in lines.items():
            print(f"  {name:<{width}}  {summary}")
    return 0
