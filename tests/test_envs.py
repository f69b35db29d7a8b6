"""Each rule's conda env lists exactly what the rule's code imports, pinned as in pyproject.toml.

A rule runs ``python -m casbo_bench SUBCOMMAND`` (written so in its
``shell:``) or ``python -m casbo_bench.MODULE``. The modules it can import are found
statically, by walking the import statements of ``src/casbo_bench`` (an AST, nothing
imported) from its entry point:

- the command-line package ``casbo_bench.cli``: the module-level imports of every module of
  it (``--help`` loads each subcommand's module), plus every import at any depth of the
  subcommand's own module and of ``casbo_bench.cli.common``;
- every other module: every import statement at any depth (a function may be called),
  except optional ones (inside ``try`` with an ``except ImportError``, or under
  ``if TYPE_CHECKING``);
- ``importlib.util.find_spec("x")`` and ``importlib.metadata.version("x")`` with a literal
  name count as needing ``x``; pandas calls that load an optional engine (``read_parquet``)
  count as needing the engine;
- a subcommand that loads plugins by name (``run``) can import every module of the plugin
  packages (:data:`SUBCOMMAND_PLUGINS`).

The third-party distributions behind those imports must be exactly the env's entries (the
union over the rules that share the env), each at pyproject.toml's pin, under its
conda-forge name (:data:`PYPI_TO_CONDA`), or under ``pip:`` when conda-forge lacks it
(:data:`PIP_ONLY`). conda-forge cannot be reached from the project's machines: this checks
the files; the envs have not been solved here.

It also checks every rule that runs something declares ``log:``, ``conda:`` (an existing
file), ``threads:`` and ``resources:`` with ``mem_mb`` and ``runtime``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "casbo_bench"
CLI_PACKAGE = "casbo_bench.cli"
CLI_SHARED = "casbo_bench.cli.common"
WORKFLOW_FILES = (REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk")))
ENV_DIR = REPO / "workflow" / "envs"
CHANNELS = ["conda-forge", "nodefaults"]

PYPI_TO_CONDA: dict[str, str] = {
    "torch": "pytorch",
    "linear-operator": "linear_operator",
    "tblite": "tblite-python",
}
"""PyPI distribution -> conda-forge package, where the names differ (others are the same)."""

PIP_ONLY: frozenset[str] = frozenset({"qm9pack", "coco-experiment", "cocopp"})
"""Distributions conda-forge does not have: listed under the env's ``pip:`` entry."""

PANDAS_ENGINES: dict[str, str] = {
    "read_parquet": "pyarrow",
    "to_parquet": "pyarrow",
    "to_latex": "jinja2",
    "to_markdown": "tabulate",
}
"""pandas methods that import an optional engine themselves: method -> distribution."""

SUBCOMMAND_PLUGINS: dict[str, tuple[str, ...]] = {
    "run": ("casbo_bench.optimizers", "casbo_bench.problems.functions"),
}
"""Subcommands that load plugins by name -> the plugin packages they may import from."""

NAMED_IMPORTS: dict[str, tuple[str, ...]] = {"run": ("casbo_bench.molecules.problem",)}
"""Subcommands -> modules the library imports by name when asked for (the molecule problem,
built by ``importlib.import_module`` so that other commands need neither torch nor RDKit)."""

ACTIONS = ("shell", "run", "script", "notebook", "wrapper", "cwl")
"""Rule directives that make a rule run something (a rule without one is only a target)."""


# --- source of casbo_bench ------------------------------------------------------------------


def module_file(module: str) -> Path | None:
    """The source file of a ``casbo_bench`` module or package, None if there is none."""
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def package_modules(package: str) -> list[str]:
    """Every module of ``package`` and its subpackages (the package itself included)."""
    folder = SRC.joinpath(*package.split("."))
    modules = [package]
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] != "__init__":
            modules.append(".".join(parts))
        elif len(parts) > len(package.split(".")) + 1:
            modules.append(".".join(parts[:-1]))
    return modules


def parents(module: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]``: importing a module runs its packages' inits."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass
class Uses:
    """What a piece of code needs: internal modules, third-party modules and distributions."""

    internal: set[str] = field(default_factory=set)
    external_modules: set[str] = field(default_factory=set)
    distributions: set[str] = field(default_factory=set)

    def update(self, other: Uses) -> None:
        self.internal |= other.internal
        self.external_modules |= other.external_modules
        self.distributions |= other.distributions


def _catches_import_error(node: ast.Try) -> bool:
    names: list[str] = []
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [kind.id for kind in kinds if isinstance(kind, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _call_name(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def _literal_argument(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _resolve_relative(module: str, level: int, name: str | None, *, is_package: bool) -> str:
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    base = package_parts[: len(package_parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _add_import(uses: Uses, target: str) -> None:
    if target.split(".")[0] == PACKAGE:
        uses.internal.update(parents(target))
    elif target.split(".")[0] not in sys.stdlib_module_names:
        uses.external_modules.add(target.split(".")[0])


def statement_uses(
    nodes: Iterable[ast.AST], module: str, *, is_package: bool, descend: bool = True
) -> Uses:
    """The needs of ``nodes`` (statements of ``module``), skipping optional imports.

    With ``descend=False`` the bodies of functions and classes are not entered: what a
    module needs when it is imported, as opposed to when its functions run.
    """
    uses = Uses()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Try) and _catches_import_error(node):
            for part in (*node.handlers, *node.orelse, *node.finalbody):
                visit(part)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for part in node.orelse:
                visit(part)
            return
        if not descend and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
        ):
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                _add_import(uses, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, node.level, node.module, is_package=is_package)
            else:
                base = node.module or ""
            _add_import(uses, base)
            for alias in node.names:
                # `from package import module` imports the submodule too.
                if base.split(".")[0] == PACKAGE and module_file(f"{base}.{alias.name}"):
                    uses.internal.update(parents(f"{base}.{alias.name}"))
        elif isinstance(node, ast.Call):
            name, literal = _call_name(node), _literal_argument(node)
            if name == "find_spec" and literal:
                _add_import(uses, literal)
            elif name == "version" and literal and "metadata" in ast.unparse(node.func):
                uses.distributions.add(canonicalize_name(literal))
            elif name in PANDAS_ENGINES and isinstance(node.func, ast.Attribute):
                uses.distributions.add(PANDAS_ENGINES[name])
        for child in ast.iter_child_nodes(node):
            visit(child)

    for node in nodes:
        visit(node)
    return uses


@cache
def parsed(module: str) -> ast.Module:
    path = module_file(module)
    assert path is not None, f"no source for {module}"
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_uses(module: str, descend: bool = True) -> Uses:
    """What importing ``module`` needs, and with ``descend`` running its functions too."""
    path = module_file(module)
    assert path is not None, f"no source for {module}"
    return statement_uses(
        parsed(module).body, module, is_package=path.name == "__init__.py", descend=descend
    )


def closure(entries: Iterable[str], import_only: Iterable[str] = ()) -> Uses:
    """Everything the modules ``entries`` can import, followed through ``casbo_bench``;
    the modules ``import_only`` count with their module-level imports only."""
    shallow = set(import_only)
    total = Uses()
    pending = [part for entry in entries for part in parents(entry)]
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        uses = module_uses(module, descend=module not in shallow)
        total.external_modules |= uses.external_modules
        total.distributions |= uses.distributions
        pending += sorted(uses.internal - seen)
    total.internal = seen
    return total


# --- the command line: subcommand -> code ----------------------------------------------


def subcommand_modules() -> dict[str, str]:
    """Subcommand -> its module, read from the real parser."""
    from casbo_bench.cli import build_parser

    parser = build_parser()
    choices: dict[str, Any] = {}
    for action in parser._actions:
        if action.choices and isinstance(action.choices, Mapping):
            choices.update(action.choices)
    return {name: sub.get_default("module").__name__ for name, sub in choices.items()}


def subcommand_uses(subcommand: str) -> Uses:
    """What ``python -m casbo_bench SUBCOMMAND`` can import."""
    modules = subcommand_modules()
    assert subcommand in modules, f"no subcommand {subcommand!r}; there are {sorted(modules)}"
    own = modules[subcommand]
    cli_modules = package_modules(CLI_PACKAGE)
    plugins = [
        module
        for package in SUBCOMMAND_PLUGINS.get(subcommand, ())
        for module in package_modules(package)
    ]
    named = NAMED_IMPORTS.get(subcommand, ())
    return closure(
        [f"{PACKAGE}.__main__", *cli_modules, *plugins, *named],
        import_only=set(cli_modules) - {own, CLI_SHARED},
    )


# --- distributions ------------------------------------------------------------------------


@cache
def module_distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def distributions_of(uses: Uses) -> set[str]:
    """Canonical names of the distributions behind ``uses`` (installed in this venv)."""
    found = set(uses.distributions)
    for module in uses.external_modules:
        providers = module_distributions().get(module)
        assert providers, (
            f"module {module!r} is imported but no installed distribution provides it; "
            f"add the distribution to pyproject.toml and reinstall"
        )
        found |= {canonicalize_name(provider) for provider in providers}
    return found


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def pyproject_pins() -> dict[str, str]:
    """Canonical name -> exact version of every runtime dependency in pyproject.toml."""
    pins: dict[str, str] = {}
    for text in pyproject()["project"]["dependencies"]:
        requirement = Requirement(text)
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        assert len(exact) == 1, f"pyproject.toml: {text!r} is not pinned with =="
        pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


# --- the workflow's rules -----------------------------------------------------------------


@dataclass
class Rule:
    name: str
    source: Path
    directives: dict[str, str]

    @property
    def runs_something(self) -> bool:
        return any(action in self.directives for action in ACTIONS)

    def conda_file(self) -> Path | None:
        match = re.search(r"""["']([^"']+)["']""", self.directives.get("conda", ""))
        return (self.source.parent / match.group(1)).resolve() if match else None


_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:")
_DIRECTIVE = re.compile(r"^    (\w+):(.*)$")


def parse_rules(path: Path) -> Iterator[Rule]:
    """The rules of one Snakefile or .smk file, with the text of each directive.

    Rules start at column 0 (``rule NAME:``); directives are indented by four spaces (the
    snakefmt layout); a rule ends at the next line at column 0.
    """
    rule: Rule | None = None
    directive: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        header = _RULE.match(line)
        if header or (line[:1].strip() and not line.startswith("#")):
            if rule is not None:
                yield rule
            rule, directive = (Rule(header.group(1), path, {}) if header else None), None
            continue
        if rule is None:
            continue
        start = _DIRECTIVE.match(line)
        if start:
            directive = start.group(1)
            rule.directives[directive] = start.group(2)
        elif directive is not None:
            rule.directives[directive] += "\n" + line
    if rule is not None:
        yield rule


@cache
def workflow_rules() -> tuple[Rule, ...]:
    return tuple(rule for path in WORKFLOW_FILES for rule in parse_rules(path))


def action_rules() -> list[Rule]:
    return [rule for rule in workflow_rules() if rule.runs_something]


def rule_entry(rule: Rule) -> tuple[str, str]:
    """``("subcommand", NAME)`` or ``("module", casbo_bench.X)``: what the rule's shell runs."""
    shell = rule.directives.get("shell", "")
    subcommand = re.search(r"-m\s+casbo_bench\s+([a-z][a-z0-9-]*)", shell)
    if subcommand:
        return "subcommand", subcommand.group(1)
    module = re.search(r"-m\s+(casbo_bench(?:\.\w+)+)", shell)
    if module:
        return "module", module.group(1)
    raise AssertionError(
        f"rule {rule.name} ({rule.source.name}): cannot tell which casbo_bench code its "
        f"shell runs; write it as python -m casbo_bench SUBCOMMAND or python -m casbo_bench.MODULE"
    )


def rule_distributions(rule: Rule) -> set[str]:
    kind, name = rule_entry(rule)
    uses = subcommand_uses(name) if kind == "subcommand" else closure([name])
    return distributions_of(uses)


# --- conda env files ------------------------------------------------------------------------

_CONDA_SPEC = re.compile(r"^([A-Za-z0-9_.-]+)\s*(==?)\s*([^\s=<>!]+)$")


def parse_env(env: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Conda entries (name -> version), pip entries (canonical name -> version), problems."""
    conda: dict[str, str] = {}
    pip: dict[str, str] = {}
    problems: list[str] = []
    for entry in env.get("dependencies") or []:
        if isinstance(entry, Mapping) and set(entry) == {"pip"}:
            for text in entry["pip"]:
                requirement = Requirement(text)
                exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
                if len(exact) != 1:
                    problems.append(f"pip entry {text!r} is not pinned with ==")
                    continue
                pip[canonicalize_name(requirement.name)] = exact[0]
        elif isinstance(entry, str) and entry != "pip":
            match = _CONDA_SPEC.match(entry.strip())
            if match is None:
                problems.append(f"entry {entry!r} is not pinned as NAME=VERSION")
                continue
            conda[match.group(1).lower()] = match.group(3)
        elif entry != "pip":
            problems.append(f"entry {entry!r} is neither NAME=VERSION nor a pip: list")
    return conda, pip, problems


def env_problems(
    env: Mapping[str, Any], required: set[str], pins: Mapping[str, str], requires_python: str
) -> list[str]:
    """Every way ``env`` differs from the distributions ``required`` at pyproject's ``pins``.

    Returns one line per problem, each naming the package and the fix; empty when the env is
    exactly right.
    """
    conda, pip, problems = parse_env(env)
    if env.get("channels") != CHANNELS:
        problems.append(f"channels are {env.get('channels')}; use {CHANNELS}")
    python = conda.pop("python", None)
    if python is None:
        problems.append("python is not listed; add python=<version>")
    elif not SpecifierSet(requires_python).contains(python):
        problems.append(f"python={python} does not satisfy requires-python {requires_python}")
    expected_conda = {PYPI_TO_CONDA.get(d, d) for d in required if d not in PIP_ONLY}
    expected_pip = {d for d in required if d in PIP_ONLY}
    for dist in sorted(required):
        if dist not in pins:
            problems.append(f"{dist} is imported but not a dependency in pyproject.toml; add it")
            continue
        conda_name = PYPI_TO_CONDA.get(dist, dist)
        if dist in PIP_ONLY:
            listed, where = pip.get(dist), f"pip: {dist}=={pins[dist]}"
        else:
            listed, where = conda.get(conda_name), f"{conda_name}={pins[dist]}"
        if listed is None:
            problems.append(f"{dist} is imported but not listed; add {where}")
        elif listed != pins[dist]:
            problems.append(f"{dist} is pinned {listed}, pyproject.toml says {pins[dist]}; {where}")
    for name in sorted(set(conda) - expected_conda):
        problems.append(f"{name} is listed but no rule using this env imports it; remove it")
    for name in sorted(set(pip) - expected_pip):
        problems.append(f"pip entry {name} is listed but no rule using this env needs it there")
    return problems


def load_env(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def required_by_env() -> dict[Path, set[str]]:
    """Env file -> distributions imported by the rules that use it."""
    required: dict[Path, set[str]] = {}
    for rule in action_rules():
        conda_file = rule.conda_file()
        if conda_file is not None:
            required.setdefault(conda_file, set()).update(rule_distributions(rule))
    return required


# --- tests: the workflow ------------------------------------------------------------------


def test_the_rules_are_found() -> None:
    names = {rule.name for rule in action_rules()}
    assert {"run", "tables", "figures"} <= names


@pytest.mark.parametrize("rule", action_rules(), ids=lambda rule: rule.name)
def test_rule_declares_log_conda_threads_and_resources(rule: Rule) -> None:
    where = f"rule {rule.name} ({rule.source.relative_to(REPO)})"
    # A run: block runs inside Snakemake's own process, where Snakemake allows no conda env.
    in_process = "run" in rule.directives
    needed = ["log", *([] if in_process else ["conda"]), "threads", "resources"]
    missing = [name for name in needed if name not in rule.directives]
    assert not missing, f"{where} lacks {', '.join(missing)}"
    for resource in ("mem_mb", "runtime"):
        assert re.search(rf"\b{resource}\s*=", rule.directives["resources"]), (
            f"{where}: resources lack {resource}"
        )
    if in_process:
        assert "conda" not in rule.directives, f"{where}: a run: block cannot use a conda env"
        return
    conda_file = rule.conda_file()
    assert conda_file is not None, f"{where}: conda: names no file"
    assert conda_file.is_file(), f"{where}: conda file {conda_file} does not exist"
    assert conda_file.parent == ENV_DIR, f"{where}: keep conda files in {ENV_DIR}"


def test_torch_optimizers_are_the_registered_ones_that_take_a_device() -> None:
    """The ``uses_torch`` each optimizer's file declares (read from source by the registry,
    and by the workflow for GPU requests) is true exactly where its constructor takes
    ``device``, and is the class's own attribute."""
    from casbo_bench.optimizers import ask_tell_optimizers, get_optimizer, torch_optimizers
    from casbo_bench.runner import accepted_options

    takes_device = {
        name for name in ask_tell_optimizers() if "device" in accepted_options(get_optimizer(name))
    }
    assert set(torch_optimizers()) == takes_device
    for name in ask_tell_optimizers():
        assert get_optimizer(name).uses_torch == (name in takes_device), name


def test_every_env_file_is_used_by_a_rule() -> None:
    used = {rule.conda_file() for rule in action_rules()}
    unused = sorted(path.name for path in ENV_DIR.glob("*.yaml") if path.resolve() not in used)
    assert not unused, f"env files no rule uses: {unused}; delete them or point a rule at them"


@pytest.mark.parametrize("path", sorted(ENV_DIR.glob("*.yaml")), ids=lambda path: path.name)
def test_env_lists_exactly_the_imports_at_pyproject_pins(path: Path) -> None:
    required = required_by_env().get(path.resolve(), set())
    problems = env_problems(
        load_env(path), required, pyproject_pins(), pyproject()["project"]["requires-python"]
    )
    assert not problems, f"{path.relative_to(REPO)}:\n  " + "\n  ".join(problems)


def test_benchmark_and_analysis_imports_are_what_the_code_says() -> None:
    """Spot checks of the import walk on known facts of the code."""
    run = distributions_of(subcommand_uses("run"))
    aggregate = distributions_of(subcommand_uses("aggregate"))
    figures = distributions_of(subcommand_uses("figures"))
    assert {"torch", "botorch", "gpytorch", "cma", "scipy", "pyarrow"} <= run
    assert "matplotlib" not in run  # figures are drawn by their own rule
    assert {"pandas", "pyarrow", "scipy"} <= aggregate
    assert not {"torch", "botorch", "cma"} & aggregate  # plugins are loaded only by `run`
    assert {"matplotlib", "seaborn"} <= figures


# --- tests: the name maps and the declared knowledge hold -------------------------------------


def test_every_subcommand_module_is_found() -> None:
    modules = subcommand_modules()
    assert {"run", "aggregate", "figures", "validate", "list"} <= set(modules)
    assert all(module.startswith(f"{CLI_PACKAGE}.") for module in modules.values())
    assert set(SUBCOMMAND_PLUGINS) <= set(modules)


def test_cli_modules_import_nothing_heavy_at_module_level() -> None:
    """``casbo-bench --help`` loads every subcommand module: their top-level imports stay
    light (heavy libraries are imported inside ``handle``)."""
    heavy = {"torch", "pandas", "pandera", "rdkit", "matplotlib", "seaborn", "botorch", "scipy"}
    for module in package_modules(CLI_PACKAGE):
        found = module_uses(module, descend=False).external_modules & heavy
        assert not found, f"{module} imports {sorted(found)} at module level; import in handle"


def test_plugin_packages_are_registries() -> None:
    for package in {package for packages in SUBCOMMAND_PLUGINS.values() for package in packages}:
        calls = [
            node
            for node in ast.walk(parsed(package))
            if isinstance(node, ast.Call) and _call_name(node) == "PluginRegistry"
        ]
        assert calls, f"{package} builds no PluginRegistry; update SUBCOMMAND_PLUGINS"


def test_name_maps_name_real_dependencies() -> None:
    pins = pyproject_pins()
    for dist in [*PYPI_TO_CONDA, *PIP_ONLY]:
        assert dist in pins, f"{dist} is in a name map of this test but not in pyproject.toml"


# --- tests: the checker itself catches drift -----------------------------------------------

PINS = {"numpy": "2.0.0", "torch": "2.5.0", "qm9pack": "1.0.3", "linear-operator": "0.6.1"}
GOOD_ENV = {
    "channels": ["conda-forge", "nodefaults"],
    "dependencies": [
        "python=3.11",
        "numpy=2.0.0",
        "pytorch=2.5.0",
        "linear_operator=0.6.1",
        "pip",
        {"pip": ["qm9pack==1.0.3"]},
    ],
}
REQUIRED = {"numpy", "torch", "qm9pack", "linear-operator"}


def with_dependencies(dependencies: list[Any]) -> dict[str, Any]:
    return {**GOOD_ENV, "dependencies": dependencies}


def test_checker_accepts_a_matching_env() -> None:
    assert env_problems(GOOD_ENV, REQUIRED, PINS, ">=3.11") == []


@pytest.mark.parametrize(
    ("dependencies", "expected"),
    [
        (
            ["python=3.11", "pytorch=2.5.0", "linear_operator=0.6.1", {"pip": ["qm9pack==1.0.3"]}],
            "numpy is imported but not listed; add numpy=2.0.0",
        ),
        (
            [
                "python=3.11",
                "numpy=1.26.4",
                "pytorch=2.5.0",
                "linear_operator=0.6.1",
                {"pip": ["qm9pack==1.0.3"]},
            ],
            "numpy is pinned 1.26.4, pyproject.toml says 2.0.0",
        ),
        (
            [
                "python=3.11",
                "numpy=2.0.0",
                "torch=2.5.0",
                "linear_operator=0.6.1",
                {"pip": ["qm9pack==1.0.3"]},
            ],
            "torch is imported but not listed; add pytorch=2.5.0",
        ),
        (
            [
                "python=3.11",
                "numpy=2.0.0",
                "pytorch=2.5.0",
                "linear-operator=0.6.1",
                {"pip": ["qm9pack==1.0.3"]},
            ],
            "linear-operator is imported but not listed; add linear_operator=0.6.1",
        ),
        (
            [
                "python=3.11",
                "numpy=2.0.0",
                "pytorch=2.5.0",
                "linear_operator=0.6.1",
                "qm9pack=1.0.3",
            ],
            "qm9pack is imported but not listed; add pip: qm9pack==1.0.3",
        ),
        (
            [
                "python=3.11",
                "numpy=2.0.0",
                "pytorch=2.5.0",
                "linear_operator=0.6.1",
                "seaborn=0.13.2",
                {"pip": ["qm9pack==1.0.3"]},
            ],
            "seaborn is listed but no rule using this env imports it",
        ),
        (
            [
                "python=3.10",
                "numpy=2.0.0",
                "pytorch=2.5.0",
                "linear_operator=0.6.1",
                {"pip": ["qm9pack==1.0.3"]},
            ],
            "python=3.10 does not satisfy requires-python >=3.11",
        ),
        (
            [
                "python=3.11",
                "numpy",
                "pytorch=2.5.0",
                "linear_operator=0.6.1",
                {"pip": ["qm9pack==1.0.3"]},
            ],
            "entry 'numpy' is not pinned as NAME=VERSION",
        ),
    ],
)
def test_checker_reports_drift(dependencies: list[Any], expected: str) -> None:
    problems = env_problems(with_dependencies(dependencies), REQUIRED, PINS, ">=3.11")
    assert any(expected in problem for problem in problems), problems


def test_checker_reports_an_import_missing_from_pyproject() -> None:
    problems = env_problems(GOOD_ENV, REQUIRED | {"tabulate"}, PINS, ">=3.11")
    assert any("tabulate is imported but not a dependency" in p for p in problems), problems


def test_checker_reports_wrong_channels() -> None:
    env = {**GOOD_ENV, "channels": ["defaults"]}
    assert any("channels" in p for p in env_problems(env, REQUIRED, PINS, ">=3.11"))


def test_import_walk_skips_optional_imports_and_sees_dynamic_needs() -> None:
    source = """
import json
import numpy as np
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import matplotlib
try:
    import torch
except ImportError:
    torch = None
def later(path):
    import scipy.stats
    import importlib.util, importlib.metadata
    importlib.util.find_spec("qm9pack")
    importlib.metadata.version("rdkit")
    return pd.read_parquet(path)
from .sibling import thing
"""
    uses = statement_uses(ast.parse(source).body, "casbo_bench.pkg.mod", is_package=False)
    assert uses.external_modules == {"numpy", "scipy", "qm9pack"}
    assert uses.distributions == {"rdkit", "pyarrow"}
    assert uses.internal == {"casbo_bench", "casbo_bench.pkg", "casbo_bench.pkg.sibling"}
    top_level = statement_uses(
        ast.parse(source).body, "casbo_bench.pkg.mod", is_package=False, descend=False
    )
    assert top_level.external_modules == {"numpy"}


def test_rule_parser_reads_directives(tmp_path: Path) -> None:
    smk = tmp_path / "x.smk"
    smk.write_text(
        'rule a:\n    output:\n        "o",\n    conda:\n        "../envs/e.yaml"\n'
        '    shell:\n        "python -m casbo_bench aggregate {output}"\n\n\n'
        'def helper():\n    pass\n\n\nrule b:\n    input:\n        "o",\n',
        encoding="utf-8",
    )
    rules = list(parse_rules(smk))
    assert [rule.name for rule in rules] == ["a", "b"]
    assert rules[0].runs_something and not rules[1].runs_something
    assert rules[0].conda_file() == (tmp_path.parent / "envs" / "e.yaml").resolve()
    assert rule_entry(rules[0]) == ("subcommand", "aggregate")


# --- tests: the static walk covers what really runs -----------------------------------------

_RUNTIME_PROBE = """
import json, sys
from casbo_bench.cli import main
status = main(sys.argv[2:])
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "casbo_bench")
print(json.dumps({"status": status, "loaded": loaded}))
"""


def runtime_modules(arguments: list[str]) -> set[str]:
    """The ``casbo_bench`` modules ``casbo-bench ARGUMENTS`` really imports (a subprocess)."""
    import json
    import os
    import subprocess

    completed = subprocess.run(
        [sys.executable, "-c", _RUNTIME_PROBE, "--", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["status"] == 0, completed.stderr
    return set(report["loaded"])


@pytest.mark.slow
def test_static_walk_covers_the_modules_each_subcommand_loads(tmp_path: Path) -> None:
    trace = tmp_path / "sphere.parquet"
    commands = {
        "run": [
            "run",
            "--method",
            "cmaes",
            "--problem",
            "sphere",
            "--dim",
            "2",
            "--seeds",
            "0",
            "--budget",
            "12",
            "--fresh-samples",
            "2",
            "--out",
            str(trace),
        ],
        "validate": ["validate", str(trace)],
        "aggregate": [
            "aggregate",
            "--out-dir",
            str(tmp_path / "tables"),
            "--reference",
            "cmaes",
            str(trace),
        ],
        "figures": ["figures", "--out-dir", str(tmp_path / "figures"), str(trace)],
    }
    for subcommand, arguments in commands.items():
        loaded = runtime_modules(arguments)
        missed = loaded - subcommand_uses(subcommand).internal
        assert not missed, f"{subcommand} loads {sorted(missed)}, which the import walk missed"
