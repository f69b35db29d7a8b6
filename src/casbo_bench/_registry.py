"""Plugin registries: every module of a package that defines a named subclass is a plugin.

Adding an optimizer or a test function is adding one file to its package; nothing else needs
editing. A plugin is a class with a literal class attribute ``name = "..."``. Names are read
from the modules' source without importing them, and only the module of the plugin asked for
is imported: a benchmark job that runs CMA-ES never pays for importing BoTorch. Modules whose
name starts with an underscore, and ``base``, are not scanned.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _declared_names(source: str) -> list[str]:
    """Values of ``name = "<literal>"`` assignments in the bodies of top-level classes."""
    names = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            if (
                any(isinstance(target, ast.Name) and target.id == "name" for target in targets)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                names.append(value.value)
    return names


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
    def _modules(self) -> dict[str, str]:
        """Plugin name -> dotted module name, from the modules' source (nothing imported)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"{self.package!r} is not a package")
        modules: dict[str, str] = {}
        for info in sorted(pkgutil.iter_modules(spec.submodule_search_locations), key=str):
            if info.name.startswith("_") or info.name == "base" or info.ispkg:
                continue
            path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[union-attr]
            for name in _declared_names(path.read_text(encoding="utf-8")):
                module = f"{self.package}.{info.name}"
                if name in modules and modules[name] != module:
                    raise RuntimeError(
                        f"two plugins are named {name!r}: {modules[name]} and {module}; rename one"
                    )
                modules[name] = module
        return modules

    def names(self) -> list[str]:
        """Every plugin name, sorted, without importing any plugin module."""
        return sorted(self._modules)

    def get(self, name: str) -> type[T]:
        """The plugin class called ``name``, importing only its module.

        Raises:
            KeyError: no plugin has that name.
        """
        module = importlib.import_module(self._modules[name])
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
