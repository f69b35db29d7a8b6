"""Plugin registries: every module of a package that defines a named subclass is a plugin.

Adding an optimizer or a test function is adding one file to its package; nothing else needs
editing. A plugin is a class with a literal class attribute ``name = "..."``. Names are read
from the modules' source without importing them, and only the module of the plugin asked for
is imported: a benchmark job that runs CMA-ES never pays for importing BoTorch. The module
docstring's first line is the plugin's one-line summary (``casbo-bench list``), a literal
``uses_torch = True`` says it runs torch code (the workflow's GPU requests), and an
optimizer's literal ``fresh_kind`` says what its fresh samples are (the tables), and a literal
``steers = True`` marks a steering method (the workflow runs those on molecule tasks only).
Modules whose name starts with an underscore, and ``base``, are not scanned.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PluginEntry:
    """What a plugin's source declares, read without importing it.

    Attributes:
        name: the class's literal ``name``.
        module: the dotted module that defines it.
        summary: the first line of the module's docstring (one plugin, one file), else of
            the class docstring.
        uses_torch: the class's literal ``uses_torch`` (False when it declares none): whether
            it runs torch code, so the workflow asks for a GPU without importing torch.
        fresh_kind: an optimizer's literal ``fresh_kind``, ``"law"`` or ``"point"``
            (:data:`casbo_bench.names.FRESH_KINDS`; ``"point"`` when it declares none, as
            the optimizer base class's ``sample_final`` repeats the best candidate): what its
            fresh samples are, for the tables without importing it.
    """

    name: str
    module: str
    summary: str
    uses_torch: bool
    fresh_kind: str = "point"
    steers: bool = False


def _literal_attributes(node: ast.ClassDef) -> dict[str, object]:
    """The class body's assignments of literal constants, ``name = "..."`` among them."""
    found: dict[str, object] = {}
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        if isinstance(value, ast.Constant):
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value.value
    return found


def _declared_plugins(source: str, module: str) -> list[PluginEntry]:
    """The top-level classes of ``source`` with a literal string ``name``."""
    tree = ast.parse(source)
    module_docstring = (ast.get_docstring(tree) or "").strip()
    entries = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attributes = _literal_attributes(node)
        name = attributes.get("name")
        if isinstance(name, str):
            docstring = module_docstring or (ast.get_docstring(node) or "").strip()
            entries.append(
                PluginEntry(
                    name=name,
                    module=module,
                    summary=docstring.splitlines()[0] if docstring else "",
                    uses_torch=attributes.get("uses_torch") is True,
                    fresh_kind=str(attributes.get("fresh_kind", "point")),
                    steers=attributes.get("steers") is True,
                )
            )
    return entries


class PluginRegistry(Generic[T]):
    """The plugins of one package: concrete subclasses of ``base`` with a ``name``.

    Args:
        package: dotted name of the package to scan (e.g. ``"casbo_bench.optimizers"``).
        base: the class every plugin subclasses. Typed loosely because it is usually abstract.

    >>> from casbo_bench.optimizers.base import Optimizer
    >>> registry = PluginRegistry("casbo_bench.optimizers", Optimizer)
    >>> "casbo" in registry.names()
    True
    """

    def __init__(self, package: str, base: Any) -> None:
        self.package = package
        self.base: type[T] = base

    @cached_property
    def entries(self) -> dict[str, PluginEntry]:
        """Plugin name -> what its source declares (nothing imported), sorted by name."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"{self.package!r} is not a package")
        entries: dict[str, PluginEntry] = {}
        for info in sorted(pkgutil.iter_modules(spec.submodule_search_locations), key=str):
            if info.name.startswith("_") or info.name == "base" or info.ispkg:
                continue
            path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[union-attr]
            module = f"{self.package}.{info.name}"
            for entry in _declared_plugins(path.read_text(encoding="utf-8"), module):
                if entry.name in entries:
                    raise RuntimeError(
                        f"two plugins are named {entry.name!r}: {entries[entry.name].module} "
                        f"and {module}; rename one"
                    )
                entries[entry.name] = entry
        return dict(sorted(entries.items()))

    def names(self) -> list[str]:
        """Every plugin name, sorted, without importing any plugin module."""
        return list(self.entries)

    def get(self, name: str) -> type[T]:
        """The plugin class called ``name``, importing only its module.

        Raises:
            KeyError: no plugin has that name.
        """
        module = importlib.import_module(self.entries[name].module)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, self.base)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
                and cls.__dict__.get("name") == name
            ):
                return cls
        raise RuntimeError(
            f"{module.__name__} declares name {name!r} but no concrete subclass of "
            f"{self.base.__name__} carries it"
        )

    def load_all(self) -> dict[str, type[T]]:
        """Every plugin class by name (imports every plugin module)."""
        return {name: self.get(name) for name in self.names()}
