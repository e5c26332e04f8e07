"""Third-party passes, registered through the ``graphopt.passes`` entry-point group.

A distribution declares its passes in its ``pyproject.toml``::

    [project.entry-points."graphopt.passes"]
    fold_double_negation = "my_package.passes:FoldDoubleNegationPass"

The entry point's name is the registry name (``--passes fold_double_negation``)
and must equal the class's :attr:`~graphopt.passes.Pass.name`; the class must
subclass :class:`~graphopt.passes.Pass` and may not take a built-in pass's
name. Plugins are loaded once per process, the first time the registry is
read, never at ``import graphopt``. A plugin that cannot be loaded does not
stop graphopt: it is left out, and ``graphopt passes`` lists it with the
reason.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import first_line
from .base import Pass

__all__ = ["ENTRY_POINT_GROUP", "Plugin", "load_plugins", "reload_plugins"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "graphopt.passes"


@dataclass(frozen=True)
class Plugin:
    """One entry point of the group: the pass it registers, or why it was left out."""

    name: str
    value: str
    distribution: str
    cls: type[Pass] | None = None
    error: str | None = None


def _load(entry: importlib.metadata.EntryPoint, builtin: Mapping[str, type[Pass]]) -> Plugin:
    distribution = entry.dist.name if entry.dist is not None else "?"
    plugin = functools.partial(Plugin, entry.name, entry.value, distribution)
    if entry.name in builtin:
        return plugin(error=f"'{entry.name}' is the name of a built-in pass")
    try:
        cls = entry.load()
    except Exception as error:  # a plugin's import can fail in any way; graphopt goes on without it
        return plugin(error=f"cannot import {entry.value}: {first_line(error)}")
    if not (isinstance(cls, type) and issubclass(cls, Pass)):
        return plugin(error=f"{entry.value} is not a subclass of graphopt.passes.Pass")
    if getattr(cls, "name", None) != entry.name:
        return plugin(error=f"{entry.value}.name is {getattr(cls, 'name', None)!r}, not the entry point's "
                            f"name {entry.name!r}")
    return plugin(cls=cls)


@functools.cache
def _discovered(builtin_names: frozenset[str]) -> tuple[Plugin, ...]:
    builtin = dict.fromkeys(builtin_names, Pass)
    plugins = tuple(_load(entry, builtin)
                    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    for plugin in plugins:
        if plugin.error:
            logger.warning("pass plugin %s from %s left out: %s", plugin.name, plugin.distribution, plugin.error)
    return plugins


def load_plugins(builtin: Mapping[str, type[Pass]]) -> tuple[Plugin, ...]:
    """Every entry point of the ``graphopt.passes`` group, loaded (once per process)."""
    return _discovered(frozenset(builtin))


def reload_plugins() -> None:
    """Forgets the plugins found so far, so that the next registry read looks again (for tests)."""
    _discovered.cache_clear()
