"""plots: records from tables and JSON, default axes, and the HTML/PNG files written."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from cairn.commands.pipeline import open_revisions
from cairn.errors import FormatError, UserError
from cairn.pipeline.plots import PlotDef, _ticks, lines_of, plots_diff, read_records
from tests.conftest import CliRepo
from tests.unit.pipeline.test_compare import commit

PIPELINE = """\
stages:
  train:
    cmd: python train.py
    plots:
    - loss.csv: {cache: false, x: epoch, y: loss, title: Training loss}
    - acc.json: {cache: false}
"""


@pytest.fixture
def tagged(repo: CliRepo) -> CliRepo:
    repo.write("cairn.yaml", PIPELINE)
    repo.write("loss.csv", "epoch,loss\n1,0.9\n2,0.6\n3,0.4\n")
    repo.write("acc.json", '[{"step": 0, "acc": 0.5}, {"step": 1, "acc": 0.7}]')
    commit(repo, "one", "v1")
    repo.write("loss.csv", "epoch,loss\n1,0.8\n2,0.5\n3,0.3\n4,0.25\n")
    repo.write("acc.json", '{"train": [{"step": 0, "acc": 0.6}, {"step": 1, "acc": 0.8}]}')
    commit(repo, "two", "v2")
    return repo


def test_records_from_csv_tsv_json_and_yaml() -> None:
    assert read_records("a.csv", b"x,y\n1,2.5\n") == [{"x": 1, "y": 2.5}]
    assert read_records("a.tsv", b"x\ty\n1\tn/a\n") == [{"x": 1, "y": "n/a"}]
    assert read_records("a.json", b'{"rows": [{"y": 1}]}') == [{"y": 1}]
    assert read_records("a.yaml", b"- y: 1\n- y: 2\n") == [{"y": 1}, {"y": 2}]
    with pytest.raises(FormatError, match="a.json: expected a list of records"):
        read_records("a.json", b'{"y": 1}')


def test_default_axes_are_step_and_the_last_field() -> None:
    records = [{"step": 0, "acc": 0.5, "loss": 1.0}, {"step": 1, "acc": 0.7, "loss": 0.5}]
    x, y, lines = lines_of(records, PlotDef("p.json"), "v1")
    assert (x, y) == ("step", "loss")
    assert (lines[0].label, lines[0].xs, lines[0].ys) == ("v1", [0.0, 1.0], [1.0, 0.5])
    # without a step field, the row number; non-numeric points are left out
    _, _, lines = lines_of([{"v": 1}, {"v": "nan?"}, {"v": 3}], PlotDef("p.json"), "v1")
    assert (lines[0].xs, lines[0].ys) == ([0.0, 2.0], [1.0, 3.0])
    _, y, lines = lines_of(records, PlotDef("p.json", y=("acc", "loss")), "v1")
    assert y == "acc, loss" and [ln.label for ln in lines] == ["v1: acc", "v1: loss"]


def test_ticks_are_round_numbers_inside_the_range() -> None:
    assert _ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert _ticks(3.0, 3.0) == [3.0]


def test_html_holds_every_revisions_series_inline(tagged: CliRepo, tmp_path: Path) -> None:
    with open_revisions() as revs:
        written, warnings = plots_diff(revs, ["v1", "v2"], tmp_path / "out" / "p.html")
    assert written == [tmp_path / "out" / "p.html"] and warnings == []
    page = written[0].read_text()
    assert "<script" not in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")  # self-contained: nothing fetched
    assert page.count("<svg") == 2 and "Training loss" in page and "acc.json" in page
    series = re.findall(r'data-revision="([^"]+)"[^>]*points="([^"]+)"', page)
    assert [label for label, _ in series] == ["v1", "v2", "v1", "v2"]
    assert [len(points.split()) for _, points in series] == [3, 4, 2, 2]


def test_default_revisions_are_head_and_the_workspace(tagged: CliRepo, tmp_path: Path
                                                      ) -> None:
    tagged.write("loss.csv", "epoch,loss\n1,0.1\n")
    with open_revisions() as revs:
        written, _ = plots_diff(revs, [], tmp_path / "p.html")
    page = written[0].read_text()
    assert "Plots: HEAD vs workspace" in page
    assert re.findall(r'data-revision="([^"]+)"', page) == ["HEAD", "workspace"] * 2


def test_png_is_a_real_image_of_a_sensible_size(tagged: CliRepo, tmp_path: Path) -> None:
    with open_revisions() as revs:
        written, _ = plots_diff(revs, ["v1", "v2"], tmp_path / "p.html", png=True)
    png = written[1].read_bytes()
    assert written[1] == tmp_path / "p.png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (800, 800) and len(png) > 10_000


def test_no_plots_is_one_clear_error(repo: CliRepo, tmp_path: Path) -> None:
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo\n")
    commit(repo, "one")
    with open_revisions() as revs, pytest.raises(UserError, match="no plots at these"):
        plots_diff(revs, [], tmp_path / "p.html")
    assert not (tmp_path / "p.html").exists()


def test_top_level_plots_name_their_files_in_y(repo: CliRepo, tmp_path: Path) -> None:
    repo.write("dvc.yaml", "stages:\n  train:\n    cmd: python train.py\nplots:\n"
                           "- train_loss:\n    x: epoch\n    y:\n      logs/train.csv: loss\n"
                           "- logs/acc.csv\n")
    repo.write("logs/train.csv", "epoch,loss\n1,0.9\n2,0.5\n")
    repo.write("logs/acc.csv", "acc\n0.1\n0.2\n0.3\n")
    commit(repo, "one", "v1")
    with open_revisions() as revs:
        written, _ = plots_diff(revs, ["v1"], tmp_path / "p.html")
    page = written[0].read_text()
    assert "<title>train_loss</title>" in page and "<title>logs/acc.csv</title>" in page
    series = re.findall(r'data-revision="([^"]+)"[^>]*points="([^"]+)"', page)
    assert [(label, len(points.split())) for label, points in series] == [
        ("v1", 2), ("workspace", 2), ("v1", 3), ("workspace", 3)]
