"""Params files of every format, dotted lookups, and the values a stage depends on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cairn.errors import FormatError, UserError
from cairn.pipeline.params import lookup, read_params, stage_param_values
from cairn.pipeline.schema import ParamRef, Stage

EXPECTED = {"train": {"lr": 0.01, "epochs": 50, "layers": [64, 32]}, "seed": 7}


@pytest.mark.parametrize(("name", "text"), [
    ("params.yaml", "train:\n  lr: 0.01\n  epochs: 50\n  layers: [64, 32]\nseed: 7\n"),
    ("params.yml", "train: {lr: 0.01, epochs: 50, layers: [64, 32]}\nseed: 7\n"),
    ("params.json", '{"train": {"lr": 0.01, "epochs": 50, "layers": [64, 32]}, "seed": 7}'),
    ("params.toml", "seed = 7\n[train]\nlr = 0.01\nepochs = 50\nlayers = [64, 32]\n"),
    ("params.py", "seed = 7\nclass train:\n    lr = 0.01\n    epochs: int = 50\n"
                  "    layers = [64, 32]\n"),
])
def test_every_format_reads_the_same(name: str, text: str) -> None:
    assert read_params(name, text.encode()) == EXPECTED


def test_python_params_are_read_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = textwrap.dedent(f"""\
        import os
        LR = 0.1
        NAME = "tree"
        COMPUTED = os.getcwd()
        open({str(marker)!r}, "w").write("x")

        class Config:
            depth = 3
            def __init__(self):
                self.width = 8
                self.dynamic = len("abc")
        """)
    params = read_params("params.py", source.encode())
    assert not marker.exists()
    assert params == {"LR": 0.1, "NAME": "tree", "Config": {"depth": 3, "width": 8}}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("p.yaml", "a: 1\n  b: 2\n", r"^p.yaml:2: invalid YAML"),
    ("p.json", '{"a": 1,\n "b": }', r"^p.json:2: invalid JSON"),
    ("p.toml", "a = 1\nb = = 2\n", r"^p.toml:2: invalid TOML"),
    ("p.py", "a = 1\nb = (\n", r"^p.py:2: invalid Python"),
    ("p.yaml", "- 1\n- 2\n", r"^p.yaml:1: a params file must hold a mapping"),
])
def test_malformed_params_files_name_file_and_line(name: str, text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_params(name, text.encode())


def test_lookup_dotted_keys_list_indexes_and_keys_with_dots() -> None:
    params = {"train": {"lr": 0.1, "layers": [{"units": 8}]}, "a.b": 1}
    assert lookup(params, "train.lr") == 0.1
    assert lookup(params, "train.layers.0.units") == 8
    assert lookup(params, "a.b") == 1
    assert lookup(params, "train") == params["train"]
    for missing in ("train.lrr", "train.layers.1", "nope", "train.lr.x"):
        with pytest.raises(KeyError):
            lookup(params, missing)


def stage(*params: ParamRef) -> Stage:
    return Stage("train", ("python train.py",), "", (), tuple(params), ())


def test_stage_param_values_per_file(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.01\n  epochs: 5\nseed: 1\n")
    (tmp_path / "model.json").write_text('{"depth": 3, "width": 4}')
    values = stage_param_values(tmp_path, stage(
        ParamRef("params.yaml", "train.lr"), ParamRef("params.yaml", "seed"),
        ParamRef("model.json", None)))
    assert values == {"params.yaml": {"train.lr": 0.01, "seed": 1},
                      "model.json": {"depth": 3, "width": 4}}


def test_unknown_param_names_key_file_and_stage(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.01\n")
    with pytest.raises(UserError) as e:
        stage_param_values(tmp_path, stage(ParamRef("params.yaml", "train.lrr")))
    assert str(e.value).startswith("unknown param 'train.lrr' in params.yaml (stage train)")
    assert "\n" not in str(e.value)


def test_missing_params_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^params file conf/p.toml not found \(stage train\)"):
        stage_param_values(tmp_path, stage(ParamRef("conf/p.toml", "a")))
