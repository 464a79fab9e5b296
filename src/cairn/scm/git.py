"""The few git operations Cairn needs, through the `git` command."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import UserError


@dataclass(frozen=True)
class Git:
    root: Path

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        proc = subprocess.run(["git", *args], cwd=self.root, input=input,
                              capture_output=True, check=False)
        if check and proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip().splitlines()
            raise UserError(f"git {args[0]} failed: {message[-1] if message else proc.returncode}")
        return proc.stdout

    def is_tracked(self, rel: str) -> bool:
        # literal: a name like `a*` or `:x` is a file, not a pattern or pathspec magic
        return bool(self.run("--literal-pathspecs", "ls-files", "--cached", "-z", "--", rel,
                             check=False))

    def add(self, paths: Iterable[str]) -> None:
        self.run("--literal-pathspecs", "add", "--", *paths)

    def resolve(self, rev: str) -> str:
        out = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if not out:
            raise UserError(f"{rev!r} is not a git revision here; see `git log` or `git tag`")
        return out.decode().strip()

    def commits_to_push(self, tip: str, remote_tip: str | None, remote: str | None
                        ) -> list[str]:
        """Commits reachable from `tip` that the remote lacks: those after `remote_tip`,
        or, for a new ref, those on none of `remote`'s branches. Just `tip` if git
        cannot tell (e.g. the remote's commit was never fetched)."""
        exclude = [remote_tip] if remote_tip else [f"--remotes={remote}"] if remote else []
        out = self.run("rev-list", tip, "--not", *exclude, "--", check=False)
        return out.decode().split() or [tip]

    def all_commits(self) -> list[str]:
        return self.run("rev-list", "--all").decode().split()

    def has_commits(self) -> bool:
        return bool(self.run("rev-parse", "--verify", "--quiet", "HEAD", check=False))

    def files_at(self, rev: str, suffix: str) -> list[str]:
        out = self.run("ls-tree", "-r", "-z", "--name-only", rev)
        # names as the OS would spell them: a name that is not UTF-8 is still a name
        return [p for p in map(os.fsdecode, out.split(b"\0")) if p and p.endswith(suffix)]

    def read_blobs(self, rev: str, paths: list[str]) -> Iterator[tuple[str, bytes]]:
        """Contents of `paths` as of `rev`, in one `git cat-file --batch`."""
        if not paths:
            return
        request = os.fsencode("".join(f"{rev}:{p}\n" for p in paths))
        out = self.run("cat-file", "--batch", input=request)
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            pos = header_end + 1
            if len(header) < 3 or header[1] == b"missing":
                continue
            size = int(header[2])
            yield path, out[pos:pos + size]
            pos += size + 1
