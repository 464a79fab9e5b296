"""The models verbs as Python functions: keyword arguments in, result objects out."""

from __future__ import annotations

from pathlib import Path

from cairn.commands import models


def test_the_models_verbs_return_what_they_did(tracking: str, tmp_path: Path) -> None:
    model_dir = tmp_path / "exported"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"w" * 10)
    for _ in range(2):
        models.register(source=str(model_dir), name="fraud", tags={"team": "risk"})
    models.promote(name="fraud", version=1, stage="production")
    done = models.promote(name="fraud", version="2", stage="Production",
                          archive_existing=True, reason="better f1").moved
    assert done is not None
    assert (done.version.version, done.previous_stage, done.archived) == (2, "None", (1,))
    assert done.audit == models.history(name="fraud")[-1]
    assert models.holders(name="fraud", stage="production").versions == (2,)
    moved = models.set_alias(name="fraud", alias="champion", version=2)
    assert (moved.target, moved.version, moved.alias and moved.alias.action) == (
        "@champion", 2, "set_alias")
    shown = models.show(name="fraud")
    assert ([v.version for v in shown.versions], shown.model.aliases) == ([2, 1],
                                                                          {"champion": 2})
    assert models.delete_alias(name="fraud", alias="champion").version is None
    assert [m.name for m in models.list_models()] == ["fraud"]
    assert [v.version for v in models.versions(name="fraud",
                                               filter_string="stage = 'archived'")] == [1]
