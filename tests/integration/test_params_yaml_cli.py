"""Params files read as DVC 3 reads them (YAML 1.2 core): the values a stage's command
gets, what `params diff` compares, and what counts as a change."""

from __future__ import annotations

from tests.conftest import CliRepo


def test_exponent_floats_in_params_are_numbers_as_in_dvc(repo: CliRepo) -> None:
    # `lr: 1e-3` is a float in YAML 1.2 (DVC's ruamel); PyYAML's YAML 1.1 made it a string:
    # `${lr}` became "1e-3" where DVC writes 0.001, and params diff had no Change.
    repo.write("params.yaml", "lr: 1e-3\nwd: 5E-4\n")
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: echo ${lr} ${wd} > a.txt\n"
                             "    params: [lr, wd]\n    outs: [a.txt]\n")
    repo.cairn("repro")
    assert (repo.root / "a.txt").read_text() == "0.001 0.0005\n"
    repo.git("add", "-A")
    repo.git("commit", "-qm", "one")
    repo.write("params.yaml", "lr: 2e-3\nwd: 5E-4\n")
    out = repo.cairn("params", "diff", "--json").output
    assert '"diff": 0.001' in out
    assert "param lr 0.001 → 0.002" in repo.cairn("repro", "--dry").output


def test_params_follow_yaml_1_2_core_as_in_dvc(repo: CliRepo) -> None:
    # What DVC 3 (ruamel, YAML 1.2) writes for these values; YAML 1.1 read `on`/`yes` as
    # true, 010 as 8 (octal), 0o10 as a string and 1:20 as 80 (base 60).
    repo.write("params.yaml", "a: on\nb: yes\nc: 010\nd: 0o10\ne: 1:20\nf: .inf\ng: True\n")
    repo.write("cairn.yaml", "stages:\n  s:\n    cmd: echo ${a} ${b} ${c} ${d} ${e} ${f} ${g}"
                             " > o.txt\n    params: [a, b, c, d, e, f, g]\n    outs: [o.txt]\n")
    repo.cairn("repro")
    assert (repo.root / "o.txt").read_text() == "on yes 10 8 1:20 inf true\n"
    assert "didn't change" in repo.cairn("repro").output
