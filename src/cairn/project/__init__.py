"""The one project context and what a project holds in git: pointer files, cairn.lock,
revisions, snapshots, ignore files (see docs/architecture.md)."""
