"""`cairn package`: immutable model packages — build, verify, sign, keygen, inspect,
extract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.packaging.manifest import Manifest


@click.group()
def package() -> None:
    """Immutable model packages: one verifiable file per registered version."""


@package.command("build")
@click.argument("uri")
@click.option("-o", "--out", "out_dir", default="dist", show_default=True, metavar="DIR",
              help="Directory to write NAME-vVERSION.cairnpkg into.")
@click.option("--include", "includes", multiple=True, metavar="PATH",
              help="A file or directory of the project to ship too (repeatable).")
@click.option("--requirements", metavar="FILE",
              help="Pinned requirements to ship instead of the version's recorded ones.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="The largest batch `cairn serve` sends the model at once (serving.yaml).")
@output.json_option
def build(uri: str, out_dir: str, includes: tuple[str, ...], requirements: str | None,
          batch_size: int, as_json: bool) -> None:
    """Package model version URI (models:/NAME/VERSION, models:/NAME@ALIAS or
    models:/NAME/STAGE): weights, code, serving.yaml, schema.json, pinned requirements
    and MANIFEST.json in one OCI image layout archive. The same version always gives the
    same bytes; the file is stored in the project's cache and recorded in the registry."""
    from cairn.commands import packages as commands

    built = commands.build(uri=uri, out_dir=out_dir, includes=includes,
                           requirements=requirements, batch_size=batch_size)
    if as_json:
        output.emit_json({**built.manifest.to_dict(), "path": str(built.path),
                          "object_id": built.object_id})
        return
    m = built.manifest
    output.echo(f"built {built.path}: {m.model['name']} v{m.model['version']}, "
                f"{len(m.files)} files, {output.human_size(m.size)}")
    output.echo(f"digest {m.digest}")


@package.command("verify")
@click.argument("path", metavar="FILE")
@click.option("--key", metavar="PUB", help="Also check FILE.sig holds this key's signature.")
@output.json_option
def verify(path: str, key: str | None, as_json: bool) -> None:
    """Re-hash every byte of package FILE against its manifest (exit 1 naming what does
    not match); with --key, check its ed25519 signature too."""
    from cairn.commands import packages as commands

    done = commands.verify(path=path, key=key)
    if as_json:
        output.emit_json({"ok": True, "digest": done.manifest.digest, "key_id": done.key_id,
                          "files": len(done.manifest.files)})
        return
    signed = f", signed by key {done.key_id[:16]}" if done.key_id else ""
    output.echo(f"ok {path}: {done.manifest.digest}, {len(done.manifest.files)} files "
                f"verified{signed}")


@package.command("sign")
@click.argument("path", metavar="FILE")
@click.option("--key", required=True, metavar="PRIV", help="The ed25519 private key file.")
def sign(path: str, key: str) -> None:
    """Verify package FILE, then write its detached signature to FILE.sig."""
    from cairn.commands import packages as commands

    sig, digest, key_id = commands.sign(path=path, key=key)
    output.echo(f"signed {digest} with key {key_id[:16]}: {sig}")


@package.command("keygen")
@click.argument("private", metavar="PRIV")
@click.argument("public", metavar="[PUB]", required=False)
def keygen(private: str, public: str | None) -> None:
    """Write a new ed25519 key pair: PRIV (mode 0600) and PUB (default: PRIV with a .pub
    suffix). Never overwrites a file."""
    from cairn.commands import packages as commands

    priv, pub, key_id = commands.make_keys(private=private, public=public)
    output.echo(f"wrote {priv} (private, keep it secret) and {pub}; key id {key_id[:16]}")


@package.command("inspect")
@click.argument("path", metavar="FILE")
@output.json_option
def inspect(path: str, as_json: bool) -> None:
    """Show package FILE's manifest, schema, lineage and signatures (verified, not
    extracted)."""
    from cairn.commands import packages as commands

    found = commands.inspect(path=path)
    if as_json:
        output.emit_json(found)
        return
    _show(found)


@package.command("extract")
@click.argument("path", metavar="FILE")
@click.option("-o", "--out", required=True, metavar="DIR", help="A new or empty directory.")
@click.option("--key", metavar="PUB", help="Also check the package's signature first.")
def extract(path: str, out: str, key: str | None) -> None:
    """Verify package FILE, then write its files (and MANIFEST.json) into DIR."""
    from cairn.commands import packages as commands

    manifest: Manifest = commands.extract(path=path, out=out, key=key)
    output.echo(f"extracted {len(manifest.files)} files of {manifest.digest} into {out}")


def _show(found: dict[str, Any]) -> None:
    model, lineage, serving = found["model"], found["lineage"], found["serving"]
    rows: list[tuple[str, str]] = [
        ("package", found["path"]), ("digest", found["digest"]),
        ("format", f"{found['format']} (Cairn {found['cairn_version']})"),
        ("size", output.human_size(found["size"])),
        ("model", f"{model['name']} v{model['version']} ({model['flavor']}), "
                  f"from {model['uri']}"),
        ("model digest", str(model["digest"])[:16]),
        ("serving", f"entry point {serving['entry_point']}, batch size "
                    f"{serving['batch_size']}, resources {serving.get('resources') or {}}")]
    if model.get("run_id"):
        rows.append(("run", str(model["run_id"])))
    git = lineage.get("git") or {}
    if git.get("commit"):
        rows.append(("git commit", git["commit"] + (" (dirty)" if git.get("dirty") else "")))
    rows += [(f"data {p}", str(d)[:16]) for p, d in sorted((lineage.get("data") or {}).items())]
    rows += [(f"param {k}", str(v)) for k, v in sorted((lineage.get("params") or {}).items())]
    rows += [(f"metric {k}", f"{v}") for k, v in sorted((lineage.get("metrics") or {}).items())]
    schema = found.get("schema")
    if schema:
        rows.append(("schema inputs", _schema(schema.get("inputs"))))
        if schema.get("outputs"):
            rows.append(("schema outputs", _schema(schema["outputs"])))
    rows.append(("requirements", ", ".join(found["requirements"]) or "-"))
    rows += [("signature", f"ed25519 key {str(s['key_id'])[:16]}"
              + ("" if s["for_this_digest"] else " (of another digest: stale)"))
             for s in found["signatures"]] or [("signature", "none")]
    rows += [(f"file {f['path']}", f"{f['digest'][7:23]}  {output.human_size(f['size'])}")
             for f in found["files"]]
    output.table(["", ""], rows)


def _schema(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "-"
    if "columns" in schema:
        return ", ".join(f"{c['name']}: {c['dtype']}" for c in schema["columns"])
    return ", ".join(f"{t.get('name') or 'tensor'}: {t['dtype']}{t['shape']}"
                     for t in schema.get("tensors", []))


COMMANDS: list[click.Command] = [package]
