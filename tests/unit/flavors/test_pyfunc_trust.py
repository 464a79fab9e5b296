"""A model's shipped code runs only when trusted, and a refused load changes nothing."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cairn
import cairn.pyfunc
import cairn.registry.loading
import cairn.sklearn
from cairn.errors import UserError
from cairn.flavors import base, pyfunc
from cairn.flavors.pickling import UntrustedModelError
from tests.unit.flavors.code_models import (
    FAILURES,
    CodeModel,
    imports_snapshot,
    write_code,
    write_lookalike,
)

Load = Callable[..., Any]

# every way a user can load a model directory by its path
BY_PATH: dict[str, Load] = {
    "cairn.load_model": lambda path, **kw: cairn.load_model(path, **kw),
    "cairn.load_model(str)": lambda path, **kw: cairn.load_model(str(path), **kw),
    "cairn.pyfunc.load_model": lambda path, **kw: cairn.pyfunc.load_model(path, **kw),
    "flavors.pyfunc.load_model": lambda path, **kw: pyfunc.load_model(path, **kw),
    "flavors.base.load": lambda path, **kw: base.load(path, **kw),
}


class Tripler:
    """A pickled python model (importable by pickle from this test module)."""

    def predict(self, model_input: Any) -> Any:
        return [x * 3 for x in model_input]


def code_model(tmp_path: Path, module: str, *, name: str = "m", **kwargs: Any
               ) -> tuple[Path, CodeModel]:
    code = write_code(tmp_path / f"src-{name}", module, **kwargs)
    path = tmp_path / name
    pyfunc.save_model(path, python_model=code.class_path, code_paths=code.files)
    assert code.ran() == []  # saving imports nothing
    return path, code


def shadowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """An ordinary module `name` first on sys.path, as an installed package would be."""
    site = write_lookalike(tmp_path / "site", name)
    monkeypatch.syspath_prepend(str(site))
    return site


def assert_imports_unchanged(before: tuple[list[str], dict[str, Any]]) -> None:
    path, modules = before
    assert sys.path == path
    added = set(sys.modules) - set(modules)
    removed = set(modules) - set(sys.modules)
    replaced = {n for n in modules if n in sys.modules and sys.modules[n] is not modules[n]}
    assert (added, removed, replaced) == (set(), set(), set())


@pytest.mark.parametrize("load", BY_PATH.values(), ids=BY_PATH.keys())
def test_code_model_by_path_without_trust_is_refused_and_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: Load) -> None:
    path, code = code_model(tmp_path, "flv_trust_a")
    site = shadowed(tmp_path, monkeypatch, "flv_trust_a_helpers")
    base.read_metadata(path)  # imports what reading any model file imports
    before = imports_snapshot()
    with pytest.raises(UntrustedModelError) as refused:
        load(path)
    message = str(refused.value)
    assert str(path) in message and "trusted=True (CLI: --trust)" in message
    assert "\n" not in message
    assert_imports_unchanged(before)
    helpers = importlib.import_module("flv_trust_a_helpers")  # an ordinary import
    assert helpers.__file__ == str(site / "flv_trust_a_helpers.py")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("flv_trust_a")
    assert code.ran() == []


def test_pickle_model_with_code_is_still_refused_and_changes_nothing(tmp_path: Path) -> None:
    code = write_code(tmp_path / "src", "flv_trust_b")
    pyfunc.save_model(tmp_path / "m", python_model=Tripler(), code_paths=code.files)
    base.read_metadata(tmp_path / "m")
    before = imports_snapshot()
    with pytest.raises(UntrustedModelError, match="is a pickle model; pickle can run"):
        cairn.load_model(tmp_path / "m")
    assert_imports_unchanged(before)
    assert list(cairn.load_model(tmp_path / "m", trusted=True).predict([1, 2])) == [3, 6]


@pytest.mark.parametrize("load", BY_PATH.values(), ids=BY_PATH.keys())
def test_code_model_by_path_with_trust_loads_and_predicts(tmp_path: Path, load: Load) -> None:
    path, code = code_model(tmp_path, "flv_trust_c")
    loaded = load(path, trusted=True)
    assert code.ran() == ["flv_trust_c", "flv_trust_c_helpers"]
    assert list(loaded.predict([1, 2])) == [3, 6]  # imports its lazy sibling
    assert code.ran()[-1] == "flv_trust_c_lazy"


def test_after_a_trusted_load_the_models_code_shadows_no_other_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = write_code(tmp_path / "src", "flv_trust_d")
    extra = tmp_path / "src" / "flv_trust_d_extra.py"
    extra.write_text(f"with open({str(code.sentinel)!r}, 'a') as f:\n"
                     f"    f.write('flv_trust_d_extra\\n')\n")
    pyfunc.save_model(tmp_path / "m", python_model=code.class_path,
                      code_paths=[*code.files, extra])
    site = shadowed(tmp_path, monkeypatch, "flv_trust_d_extra")
    loaded = cairn.load_model(tmp_path / "m", trusted=True)
    assert list(loaded.predict([2])) == [6]
    assert importlib.import_module("flv_trust_d_extra").__file__ == str(
        site / "flv_trust_d_extra.py")
    assert "flv_trust_d_extra" not in code.ran()


@pytest.mark.parametrize("fail", FAILURES)
def test_a_trusted_load_that_fails_midway_leaves_imports_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    path, code = code_model(tmp_path, "flv_trust_e", fail=fail)
    site = shadowed(tmp_path, monkeypatch, "flv_trust_e_helpers")
    base.read_metadata(path)
    before = imports_snapshot()
    with pytest.raises((UserError, RuntimeError)) as failed:
        cairn.load_model(path, trusted=True)
    if fail == "at_import":
        assert isinstance(failed.value, UserError)
        assert "cannot import 'flv_trust_e:Model'" in str(failed.value)
    assert code.ran() == ["flv_trust_e", "flv_trust_e_helpers"]  # it did get that far
    assert_imports_unchanged(before)
    helpers = importlib.import_module("flv_trust_e_helpers")
    assert helpers.__file__ == str(site / "flv_trust_e_helpers.py")


def test_a_failed_load_puts_back_the_module_another_model_provided(tmp_path: Path) -> None:
    good, _ = code_model(tmp_path, "flv_trust_f", name="good")
    bad, _ = code_model(tmp_path, "flv_trust_f", name="bad", fail="in_load_context",
                        factor=10)
    first = cairn.load_model(good, trusted=True)
    before = imports_snapshot()
    with pytest.raises(RuntimeError, match="broken load_context"):
        cairn.load_model(bad, trusted=True)
    assert_imports_unchanged(before)
    assert sys.modules["flv_trust_f_helpers"].FACTOR == 3
    assert list(first.predict([1])) == [3]


@pytest.mark.parametrize("trusted", [False, True])
def test_loading_as_another_flavor_runs_none_of_the_models_code(tmp_path: Path,
                                                                trusted: bool) -> None:
    path, code = code_model(tmp_path, "flv_trust_g")
    before = imports_snapshot()
    with pytest.raises(UserError, match="is a pyfunc model, not sklearn"):
        cairn.sklearn.load_model(path, trusted=trusted)
    assert_imports_unchanged(before)
    assert code.ran() == []
