"""The workload registry's rules: which workload takes a config, and whose defaults a command without one gets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from graphopt import workloads
from graphopt.errors import ConfigError


class _Type:
    """A workload type whose ``default()`` is a marker object, or refuses like the yolo workload's."""

    def __init__(self, name: str, *, has_defaults: bool) -> None:
        self.name, self.has_defaults = name, has_defaults

    def claims(self, data: Mapping[str, Any]) -> bool:
        return self.name in data

    def parse(self, data: Mapping[str, Any], *, source: str) -> Any:
        return (self.name, source)

    def default(self) -> Any:
        if not self.has_defaults:
            raise ConfigError(f"the {self.name} workload needs a config")
        return self.name


def _installed(monkeypatch: pytest.MonkeyPatch, *types: _Type) -> None:
    monkeypatch.setattr(workloads, "registered_workloads", lambda: {t.name: t for t in types})


def test_the_only_workload_with_defaults_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, _Type("person", has_defaults=True), _Type("yolo", has_defaults=False))
    assert workloads.default_workload() == "person"


@pytest.mark.parametrize("with_defaults", [0, 2])
def test_none_or_several_with_defaults_ask_for_a_config(monkeypatch: pytest.MonkeyPatch, with_defaults: int) -> None:
    types = [_Type(f"w{i}", has_defaults=i < with_defaults) for i in range(3)]
    _installed(monkeypatch, *types)
    with pytest.raises(ConfigError, match=rf"give --config: {with_defaults} of the installed workloads \(w0, w1, w2\) "
                                          "run without one"):
        workloads.default_workload()
