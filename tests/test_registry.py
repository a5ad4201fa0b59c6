"""Registry[T]: the one lookup idiom for models, weights, detectors, datasets and losses."""

from __future__ import annotations

import sys

import pytest

from ferkit.errors import DataError, FerkitError
from ferkit.registry import Registry


def test_register_get_and_list():
    reg: Registry[int] = Registry("thing")
    assert reg.register("beta", 2) == 2
    reg.register("alpha", 1)
    assert reg.get("alpha") == 1 and "beta" in reg and "gamma" not in reg
    assert reg.names() == ["alpha", "beta"] == list(reg) and len(reg) == 2
    assert reg.names("a*") == ["alpha"]
    assert reg.names(where=lambda v: v > 1) == ["beta"]
    assert reg.items() == [("beta", 2), ("alpha", 1)]  # registration order
    with pytest.raises(ValueError, match="thing name 'alpha' is already registered"):
        reg.register("alpha", 3)
    assert reg.get("alpha") == 1


def test_unknown_name_is_one_line_with_suggestions_and_hint():
    reg: Registry[str] = Registry("dataset format", error=DataError, hint="(`ferkit data`)")
    reg.register("fer2013", "a")
    reg.register("ferplus", "b")
    with pytest.raises(DataError) as err:
        reg.get("fer2031")
    assert str(err.value) == ("unknown dataset format 'fer2031'. Did you mean 'fer2013'? "
                              "Available: fer2013, ferplus. (`ferkit data`)")
    with pytest.raises(FerkitError, match=r"unknown dataset format 'zzz'\. Available"):
        reg.get("zzz")


def test_decorator_registers_and_returns_the_function():
    reg: Registry[tuple] = Registry("builder")

    @reg.decorator("double", wrap=lambda fn: ("wrapped", fn))
    def double(x):
        return 2 * x

    assert double(3) == 6
    assert reg.get("double") == ("wrapped", double)


def test_loaders_run_once_on_first_read(tmp_path, monkeypatch):
    reg: Registry[int] = Registry("plugin", loaders=("ferkit_test_plugin_mod",))
    (tmp_path / "ferkit_test_plugin_mod.py").write_text(
        "from tests_registry_target import REG\nREG.register('p', 7)\n")
    (tmp_path / "tests_registry_target.py").write_text("REG = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_target

    tests_registry_target.REG = reg
    assert "ferkit_test_plugin_mod" not in sys.modules  # nothing imported at creation
    assert reg.get("p") == 7 and reg.names() == ["p"]
    assert reg.names() == ["p"]  # not imported twice (a second import would re-register)
    monkeypatch.delitem(sys.modules, "ferkit_test_plugin_mod")
    monkeypatch.delitem(sys.modules, "tests_registry_target")


def test_hidden_entries_are_found_but_not_advertised():
    reg: Registry[bool] = Registry("model", hidden=lambda test_only: test_only)
    reg.register("dan", False)
    reg.register("dan_test", True)
    assert reg.get("dan_test") is True
    with pytest.raises(FerkitError) as err:
        reg.get("dsn")
    assert str(err.value).endswith("Available: dan.")
