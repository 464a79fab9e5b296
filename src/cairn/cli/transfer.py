"""Remote commands: remote add/list/modify/remove/default, push, fetch, pull, status --cloud."""

from __future__ import annotations

COMMANDS: list[object] = []


def show_cloud_status(targets: tuple[str, ...], remote: str | None, jobs: int | None,
                      as_json: bool) -> None:
    raise NotImplementedError
