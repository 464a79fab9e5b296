"""Loading cairn.yaml / dvc.yaml: the seed's pipeline, templating, and one-line errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from cairn import yamlfile
from cairn.errors import FormatError
from cairn.pipeline.schema import Output, ParamRef, Stage, load_pipeline, load_pipeline_at

# The pipeline of the seed article, as a DVC user has it.
SEED_DVC_YAML = """\
stages:
  preprocess:
    cmd: python src/preprocess.py
    deps:
    - src/preprocess.py
    - data/raw/
    outs:
    - data/processed/
  train:
    cmd: python src/train.py
    deps:
    - src/train.py
    - data/processed/
    params:
    - train.learning_rate
    - train.epochs
    outs:
    - models/classifier.pkl
    metrics:
    - metrics.json:
        cache: false
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def load(text: str, **files: str) -> dict[str, Stage]:
    contents = {"dvc.yaml": textwrap.dedent(text).encode()}
    contents.update({k.replace("__", "."): textwrap.dedent(v).encode() for k, v in files.items()})
    return dict(load_pipeline_at(contents).stages)


def test_seed_dvc_yaml_loads_unchanged(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, {"dvc.yaml": SEED_DVC_YAML}))
    assert list(pipeline.stages) == ["preprocess", "train"]
    assert pipeline.files == ("dvc.yaml",)
    pre, train = pipeline.stages.values()
    assert pre == Stage("preprocess", ("python src/preprocess.py",), "",
                        ("src/preprocess.py", "data/raw"), (),
                        (Output("data/processed"),), file="dvc.yaml")
    assert train.params == (ParamRef("params.yaml", "train.learning_rate"),
                            ParamRef("params.yaml", "train.epochs"))
    assert train.outs == (Output("models/classifier.pkl"),
                          Output("metrics.json", cache=False, kind="metrics"))


def test_no_pipeline_file_is_an_empty_pipeline(tmp_path: Path) -> None:
    assert load_pipeline(tmp_path).stages == {}


def test_cairn_yaml_and_dvc_yaml_and_subdirectories(tmp_path: Path) -> None:
    write(tmp_path, {
        "cairn.yaml": "stages:\n  a:\n    cmd: echo a\n    outs: [a.txt]\n",
        "dvc.yaml": "stages:\n  b:\n    cmd: echo b\n",
        "sub/dir/dvc.yaml": "stages:\n  c:\n    cmd: echo c\n    wdir: ..\n    outs: [c.txt]\n",
        ".hidden/dvc.yaml": "not: [valid",  # never looked into
        "tracked/dvc.yaml": "not: [valid",  # a tracked directory (tracked.cairn beside it)
        "tracked.cairn": "outs: []\n",
    })
    pipeline = load_pipeline(tmp_path)
    assert list(pipeline.stages) == ["a", "b", "sub/dir/dvc.yaml:c"]
    nested = pipeline.stages["sub/dir/dvc.yaml:c"]
    assert (nested.file, nested.wdir, nested.outs[0].path) == ("sub/dir/dvc.yaml", "sub",
                                                               "sub/c.txt")
    assert pipeline.files == ("cairn.yaml", "dvc.yaml", "sub/dir/dvc.yaml")


def test_stage_keys_cmd_list_wdir_flags_and_out_options() -> None:
    stages = load("""\
        stages:
          train:
            cmd:
            - python prep.py
            - python train.py
            wdir: src
            desc: trains
            meta: {owner: me}
            frozen: true
            always_changed: true
            deps: [train.py, ../data]
            params:
            - lr
            - ../conf.json: [model.depth]
            - all.toml:
            outs:
            - model.pkl
            - logs:
                persist: true
                cache: false
                remote: backup
            plots:
            - loss.csv: {x: step, y: loss, title: Loss}
        """)
    s = stages["train"]
    assert s.cmd == ("python prep.py", "python train.py")
    assert (s.wdir, s.frozen, s.always_changed, s.desc) == ("src", True, True, "trains")
    assert s.deps == ("src/train.py", "data")
    assert s.params == (ParamRef("src/params.yaml", "lr"), ParamRef("conf.json", "model.depth"),
                        ParamRef("src/all.toml", None))
    assert s.outs == (Output("src/model.pkl"),
                      Output("src/logs", cache=False, persist=True, options={"remote": "backup"}),
                      Output("src/loss.csv", kind="plots",
                             options={"x": "step", "y": "loss", "title": "Loss"}))


def test_interpolation_from_params_yaml_and_vars_keeps_types() -> None:
    stages = load("""\
        vars:
        - config.json:model
        - inline: {epochs: 3, tags: [a, b], flag: true}
        stages:
          train:
            cmd: train.py --lr ${train.lr} --depth ${model.depth} ${inline.tags} ${inline.flag}
            outs: ["models/${model.name}.pkl"]
            frozen: ${train.frozen}
            params:
            - ${model.name}.json: [a]
        """, params__yaml="train:\n  lr: 0.01\n  frozen: true\n",
        config__json='{"model": {"depth": 4, "name": "tree"}, "other": 1}')
    s = stages["train"]
    assert s.cmd == ("train.py --lr 0.01 --depth 4 a b true",)
    assert s.outs[0].path == "models/tree.pkl"
    assert s.frozen is True  # a whole-string ${} keeps the boolean
    assert s.params == (ParamRef("tree.json", "a"),)


def test_mapping_in_cmd_becomes_options_and_escape_is_literal() -> None:
    stages = load("""\
        vars:
        - opts: {lr: 0.1, verbose: true, quiet: false, net: {depth: 2}}
        stages:
          s:
            cmd: train ${opts} --literal \\${x}
        """)
    assert stages["s"].cmd == ("train --lr 0.1 --verbose --net.depth 2 --literal ${x}",)


def test_foreach_list_dict_and_list_of_mappings() -> None:
    stages = load("""\
        vars:
        - regions: {eu: 1, us: 2}
        stages:
          build:
            foreach: [us, uk]
            do:
              cmd: make ${item}
              outs: ["out/${item}.txt"]
          fit:
            foreach: ${regions}
            do:
              cmd: fit ${key} ${item}
          train:
            foreach:
            - {name: small, size: 1}
            - {name: big, size: 10}
            do:
              cmd: train --size ${item.size}
              outs: ["models/${item.name}.pkl"]
        """)
    assert {n: s.cmd[0] for n, s in stages.items()} == {
        "build@us": "make us", "build@uk": "make uk", "fit@eu": "fit eu 1",
        "fit@us": "fit us 2", "train@0": "train --size 1", "train@1": "train --size 10"}
    assert stages["train@1"].outs[0].path == "models/big.pkl"


def test_matrix_is_the_cartesian_product() -> None:
    stages = load("""\
        stages:
          grid:
            matrix:
              model: [tree, forest]
              lr: [0.1, 0.2]
              cfg: [{a: 1}]
            cmd: train ${item.model} ${item.lr} ${item.cfg.a}
            outs: ["res/${item.model}-${item.lr}.json"]
        """)
    assert list(stages) == ["grid@tree-0.1-cfg0", "grid@tree-0.2-cfg0", "grid@forest-0.1-cfg0",
                            "grid@forest-0.2-cfg0"]
    assert stages["grid@forest-0.2-cfg0"].cmd == ("train forest 0.2 1",)
    assert stages["grid@tree-0.1-cfg0"].outs[0].path == "res/tree-0.1.json"


def test_stage_vars_are_relative_to_wdir() -> None:
    stages = load("""\
        stages:
          s:
            wdir: sub
            vars: [local.yaml]
            cmd: echo ${x}
        """, **{"sub/local__yaml": "x: 42\n"})
    assert stages["s"].cmd == ("echo 42",)


def test_top_level_plots_metrics_params() -> None:
    pipeline = load_pipeline_at({"sub/dvc.yaml": textwrap.dedent("""\
        metrics: [m.json]
        params: [p.yaml]
        plots:
        - roc.csv
        - confusion:
            x: actual
            y: {preds.csv: predicted}
            template: confusion
        """).encode()})
    assert pipeline.metrics == (Output("sub/m.json", cache=False, kind="metrics"),)
    assert pipeline.params == ("sub/p.yaml",)
    assert pipeline.plots == (
        Output("sub/roc.csv", cache=False, kind="plots"),
        Output("sub/confusion", cache=False, kind="plots",
               options={"x": "actual", "y": {"preds.csv": "predicted"}, "template": "confusion"}))


@pytest.mark.parametrize(("text", "message"), [
    ("stages:\n  a:\n    cmd: [x\n", r"^dvc.yaml:4: invalid YAML: .*"),
    ("stages:\n  a:\n    cmd: x\n\n    outz: [y]\n",
     r"^dvc.yaml:5: stage 'a': unknown key 'outz' \(did you mean 'outs'\?\)"),
    ("stages:\n  a:\n    cmd: x\n    frozen: maybe\n",
     r"^dvc.yaml:4: stage 'a': `frozen` must be true or false, not 'maybe'$"),
    ("stages:\n  a:\n    cmd: 3\n", r"^dvc.yaml:3: stage 'a': `cmd` must be a command"),
    ("stages:\n  a:\n    cmd: x\n    deps: src\n",
     r"^dvc.yaml:4: stage 'a': `deps` must be a list"),
    ("stages:\n  a:\n    cmd: x\n    outs:\n    - m.json:\n        cache: nope\n",
     r"^dvc.yaml:6: stage 'a': option 'cache' of m.json must be true or false$"),
    ("stages:\n  a:\n    cmd: x\n    outs:\n    - m.json: {cahce: false}\n",
     r"^dvc.yaml:5: stage 'a': unknown option 'cahce' of m.json \(did you mean 'cache'\?\)"),
    ("stages:\n  a:\n    cmd: echo ${nope}\n",
     r"^dvc.yaml:3: stage 'a': undefined variable 'nope' in 'echo \$\{nope\}'; define it"),
    ("stages:\n  a:\n    foreach: [1, 2]\n    do:\n      cmd: echo ${item.x}\n",
     r"^dvc.yaml:5: stage 'a': undefined variable 'item.x'"),
    ("stages:\n  a:\n    cmd: x\n  b:\n    cmd: y\n  a:\n    cmd: z\n",
     r"^dvc.yaml:6: 'a' is defined twice"),
    ("stages:\n  a:\n    deps: [x]\n", r"^dvc.yaml:2: stage 'a': has no `cmd`"),
    ("stagez: {}\n", r"^dvc.yaml:1: unknown top-level key 'stagez' \(did you mean 'stages'\?\)"),
    ("stages:\n  a:\n    cmd: x\n    outs: [../../etc/x]\n",
     r"^dvc.yaml:4: stage 'a': outs '../../etc/x' climbs out of the workspace"),
    ("stages:\n  a:\n    foreach: 3\n    do: {cmd: x}\n",
     r"^dvc.yaml:3: stage 'a': `foreach` must"),
    ("stages:\n  a:\n    foreach: [1]\n    cmd: x\n", r"^dvc.yaml:4: stage 'a': a foreach stage"),
    ("vars: [missing.yaml]\nstages: {}\n", r"^dvc.yaml:1: vars file missing.yaml not found"),
    ("stages:\n  a@b:\n    cmd: x\n", r"^dvc.yaml:2: stage name 'a@b' must not"),
    ("- a list\n", r"^dvc.yaml:1: a pipeline file must be a mapping"),
])
def test_errors_are_one_line_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(FormatError) as e:
        load(text)
    assert "\n" not in str(e.value)
    assert re.search(message, str(e.value)), str(e.value)


def test_invalid_params_yaml_used_for_interpolation_names_its_own_line() -> None:
    with pytest.raises(FormatError, match=r"^params.yaml:2: invalid YAML"):
        load("stages:\n  a:\n    cmd: echo ${x}\n", params__yaml="x: 1\n  y: 2\n")


def test_same_stage_in_cairn_yaml_and_dvc_yaml_is_refused() -> None:
    with pytest.raises(FormatError, match=r"^dvc.yaml:2: stage 'a' is defined twice "
                                          r"\(also in cairn.yaml\)"):
        load_pipeline_at({"cairn.yaml": b"stages:\n  a:\n    cmd: x\n",
                          "dvc.yaml": b"stages:\n  a:\n    cmd: y\n"})


def test_foreach_with_a_value_twice_is_refused() -> None:
    with pytest.raises(FormatError, match="^dvc.yaml:3: stage 'b': `foreach` lists 'x' twice"):
        load("stages:\n  b:\n    foreach: [x, x]\n    do: {cmd: y}\n")


def test_parsed_yaml_is_kept_and_a_changed_file_is_read_again(tmp_path: Path) -> None:
    (tmp_path / ".cairn").mkdir()
    yamlfile._memo.clear()
    write(tmp_path, {"dvc.yaml": SEED_DVC_YAML})
    assert list(load_pipeline(tmp_path).stages) == ["preprocess", "train"]
    assert any((tmp_path / ".cairn" / "tmp" / "yaml").iterdir())
    write(tmp_path, {"dvc.yaml": SEED_DVC_YAML.replace("train:", "fit:")})
    assert list(load_pipeline(tmp_path).stages) == ["preprocess", "fit"]
    for kept in (tmp_path / ".cairn" / "tmp" / "yaml").iterdir():
        kept.write_bytes(kept.read_bytes()[:20])  # a torn entry is only a miss
    yamlfile._memo.clear()
    assert list(load_pipeline(tmp_path).stages) == ["preprocess", "fit"]


def test_invalid_vars_file_names_its_own_file_and_line() -> None:
    with pytest.raises(FormatError, match=r"^conf.json:2: invalid JSON"):
        load("vars: [conf.json]\nstages: {}\n", conf__json='{"a": 1,\n "b": }')


def test_plot_props_may_be_a_list_as_dvc_allows() -> None:
    stages = load("stages:\n  a:\n    cmd: x\n    plots:\n    - p.csv:\n      - x: step\n"
                  "      - y: loss\n")
    assert stages["a"].outs == (Output("p.csv", kind="plots", options={"x": "step", "y": "loss"}),)
