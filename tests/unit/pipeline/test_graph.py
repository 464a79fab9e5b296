"""The stage graph: checks before anything runs, dependency order, targets, drawings."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import NotFoundError, UserError
from cairn.pipeline.graph import Graph, build_graph
from cairn.pipeline.schema import Output, Pipeline, Stage, load_pipeline_at


def stage(name: str, deps: list[str] = [], outs: list[str] = [],  # noqa: B006
          file: str = "cairn.yaml") -> Stage:
    return Stage(name, (f"make {name}",), "", tuple(deps), (), tuple(Output(o) for o in outs),
                 file=file)


def graph(*stages: Stage, root: Path = Path("/nonexistent"), check_missing: bool = False
          ) -> Graph:
    return build_graph(Pipeline({s.name: s for s in stages}, (), ()), root, check_missing)


def names(stages: list[Stage]) -> list[str]:
    return [s.name for s in stages]


# Declared out of order on purpose: evaluate first, the source last.
DIAMOND = (
    stage("evaluate", ["models/m.pkl", "data/features/test.csv"], ["eval.json"]),
    stage("train", ["data/features"], ["models/m.pkl"]),
    stage("featurize", ["data/prepared"], ["data/features"]),
    stage("prepare", ["data/raw"], ["data/prepared"]),
    stage("report", ["eval.json"], ["report.html"]),
)


def test_dependency_order_and_edges_through_directories() -> None:
    g = graph(*DIAMOND)
    assert list(g.stages) == ["prepare", "featurize", "train", "evaluate", "report"]
    assert names(g.upstream(g.stages["evaluate"])) == ["train", "featurize"]
    assert names(g.downstream(g.stages["featurize"])) == ["evaluate", "train"]


def test_a_dep_directory_holding_an_output_depends_on_its_producer() -> None:
    g = graph(stage("make", [], ["data/a/part.csv"]), stage("use", ["data"], ["x"]))
    assert names(g.upstream(g.stages["use"])) == ["make"]


def test_stages_to_run_targets_upstream_and_downstream() -> None:
    g = graph(*DIAMOND)
    assert names(g.stages_to_run([])) == list(g.stages)
    assert names(g.stages_to_run(["train"])) == ["prepare", "featurize", "train"]
    assert names(g.stages_to_run(["featurize"], downstream=True)) == [
        "featurize", "train", "evaluate", "report"]
    assert names(g.stages_to_run(["cairn.yaml:train"])) == ["prepare", "featurize", "train"]
    assert names(g.stages_to_run(["models/m.pkl"])) == ["prepare", "featurize", "train"]


def test_targets_by_group_and_by_file() -> None:
    p = load_pipeline_at({
        "dvc.yaml": b"stages:\n  fit:\n    foreach: [a, b]\n    do:\n      cmd: fit ${item}\n",
        "sub/dvc.yaml": b"stages:\n  other:\n    cmd: x\n"})
    g = build_graph(p, Path("/nonexistent"), check_missing=False)
    assert names(g.stages_to_run(["fit"])) == ["fit@a", "fit@b"]
    assert names(g.stages_to_run(["sub/dvc.yaml"])) == ["sub/dvc.yaml:other"]
    assert names(g.stages_to_run(["sub/dvc.yaml:other"])) == ["sub/dvc.yaml:other"]


def test_unknown_target_suggests_a_name() -> None:
    with pytest.raises(NotFoundError, match="^no stage 'trian' in the pipeline; did you mean "
                                            "'train'\\?$"):
        graph(*DIAMOND).stages_to_run(["trian"])


@pytest.mark.parametrize(("stages", "message"), [
    ((stage("a", ["y"], ["x"]), stage("b", ["x"], ["y"])),
     "^the pipeline has a cycle: a -> b -> a; a stage cannot depend"),
    ((stage("a", ["z"], ["x"]), stage("b", ["x"], ["y"]), stage("c", ["y"], ["z"])),
     "^the pipeline has a cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c);"),
    ((stage("a", ["out/x"], ["out"]),),
     r"^stage 'a' depends on its own output \(out/x\)"),
    ((stage("a", [], ["m.pkl"]), stage("b", [], ["m.pkl"])),
     "^output 'm.pkl' is produced by both stage 'a' and stage 'b'; an output must have one"),
    ((stage("a", [], ["m.pkl", "m.pkl"]),), "^output 'm.pkl' is listed twice in stage 'a'"),
    ((stage("a", [], ["data"]), stage("b", [], ["data/sub/x.csv"])),
     "^output 'data/sub/x.csv' of stage 'b' is inside output 'data' of stage 'a'; outputs must"),
])
def test_bad_graphs_are_refused_with_one_line(stages: tuple[Stage, ...], message: str) -> None:
    with pytest.raises(UserError, match=message) as e:
        graph(*stages)
    assert "\n" not in str(e.value)


def test_missing_dep_unless_on_disk_produced_or_tracked(tmp_path: Path) -> None:
    (tmp_path / "src.py").write_text("")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.cairn").write_text("outs: []\n")  # data/raw is tracked
    (tmp_path / "legacy.dvc").write_text("outs: []\n")
    ok = stage("a", ["src.py", "data/raw", "data/raw/part-0.csv", "legacy", "s3://b/k"], ["o"])
    graph(ok, root=tmp_path, check_missing=True)
    with pytest.raises(UserError, match="^stage 'b' depends on 'inputs/x.csv', which does not "
                                        "exist and no stage produces; create it, `cairn add` it"):
        graph(ok, stage("b", ["o", "inputs/x.csv"], ["p"]), root=tmp_path, check_missing=True)


def test_ascii_drawing_has_boxes_in_order_with_lines_between() -> None:
    text = graph(stage("preprocess", [], ["d"]), stage("train", ["d"], ["m"])).to_ascii()
    lines = text.splitlines()
    assert lines[:3] == ["+------------+", "| preprocess |", "+------------+"]
    assert lines[-3:] == ["  +-------+", "  | train |", "  +-------+"]
    assert all(set(line.strip()) == {"*"} for line in lines[3:-3])


def test_ascii_drawing_routes_long_edges_around_boxes() -> None:
    text = graph(*DIAMOND).to_ascii()
    for name in ("prepare", "featurize", "train", "evaluate", "report"):
        assert f"| {name} |" in text
    # the featurize -> evaluate edge skips a layer: no line runs through the train box
    box = next(line for line in text.splitlines() if "| train |" in line)
    assert "*" not in box[box.index("|"):box.rindex("|") + 1]


def test_mermaid_and_dot() -> None:
    g = graph(stage("prepare", [], ["d"]), stage("train", ["d"], ["m"]),
              stage("eval", ["m", "d"], ["e"]))
    assert g.to_mermaid() == (
        'flowchart TD\n\tnode1["prepare"]\n\tnode2["train"]\n\tnode3["eval"]\n'
        "\tnode1-->node2\n\tnode1-->node3\n\tnode2-->node3")
    assert g.to_dot() == (
        'strict digraph {\n"prepare";\n"train";\n"eval";\n'
        '"prepare" -> "train";\n"prepare" -> "eval";\n"train" -> "eval";\n}')


def test_subgraph_for_a_target() -> None:
    sub = graph(*DIAMOND).subgraph(["featurize"])
    assert list(sub.stages) == ["prepare", "featurize"]
    assert sub.edges() == [("prepare", "featurize")]


def test_an_output_tracked_by_a_pointer_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pkl.cairn").write_text("outs: []\n")
    with pytest.raises(UserError, match="^output 'models/m.pkl' of stage 'a' is also tracked by "
                                        "models/m.pkl.cairn; remove"):
        graph(stage("a", [], ["models/m.pkl"]), root=tmp_path, check_missing=True)


def test_ascii_draws_unrelated_stages_one_below_the_other() -> None:
    text = graph(stage("a", [], ["x"]), stage("lonely", [], ["l"]), stage("b", ["x"], ["y"])
                 ).to_ascii()
    lines = text.splitlines()
    assert lines[-3:] == ["+--------+", "| lonely |", "+--------+"]
    assert max(len(line) for line in lines) == len("+--------+")


def test_a_cached_out_git_cannot_ignore_is_refused_before_anything_runs() -> None:
    with pytest.raises(UserError, match="newline or carriage return"):
        graph(stage("a", outs=["a\nb"]))
    graph(Stage("m", ("x",), "", (), (), (Output("m\nb", cache=False),)))  # git keeps it
