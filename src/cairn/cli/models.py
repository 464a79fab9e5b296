"""Model registry commands: models list/show/versions/register/promote/alias/history/lineage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output
from cairn.cli._client import day, when

if TYPE_CHECKING:
    from cairn.registry.history import StageHolders
    from cairn.store.entities import AuditEntry, ModelVersion, RegisteredModel


@click.group()
def models() -> None:
    """The model registry: versions, stages, aliases, history and lineage."""


@models.command("list")
@click.option("--filter", "filter_string", default="", help="E.g. \"name LIKE 'fraud%'\".")
@output.json_option
def models_list(filter_string: str, as_json: bool) -> None:
    """List registered models with the versions holding each stage."""
    from cairn.commands import models as commands

    found = commands.list_models(filter_string=filter_string)
    if as_json:
        output.emit_json([_model_dict(m) for m in found])
        return
    if not found:
        output.echo("No registered models; register one with `cairn models register`.")
        return
    output.table(["name", "latest", "stages", "aliases", "updated"],
                 [(m.name, max((f"v{mv.version}" for mv in m.latest_versions), default="-"),
                   _stages_held(m), _aliases(m.aliases), day(m.last_updated_timestamp))
                  for m in found])


def _model_dict(model: RegisteredModel) -> dict[str, Any]:
    out = asdict(model)
    out["latest_versions"] = [_version_dict(mv) for mv in model.latest_versions]
    return out


def _version_dict(mv: ModelVersion) -> dict[str, Any]:
    out = asdict(mv)
    out["aliases"] = list(mv.aliases)
    return out


def _stages_held(model: RegisteredModel) -> str:
    held = [f"{mv.current_stage}: v{mv.version}" for mv in model.latest_versions
            if mv.current_stage != "None"]
    return ", ".join(held) or "-"


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}→v{v}" for a, v in sorted(aliases.items())) or "-"


@models.command("show")
@click.argument("name")
@output.json_option
def models_show(name: str, as_json: bool) -> None:
    """A registered model: description, tags, aliases and its versions."""
    from cairn.commands import models as commands

    shown = commands.show(name=name)
    model, versions = shown.model, shown.versions
    if as_json:
        output.emit_json({**_model_dict(model), "versions": [_version_dict(v) for v in versions]})
        return
    output.echo(f"Model {model.name!r}" + (f": {model.description}" if model.description else ""))
    output.echo(f"aliases: {_aliases(model.aliases)}")
    if model.tags:
        output.echo("tags: " + ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items())))
    _versions_table(versions)


def _versions_table(versions: list[ModelVersion]) -> None:
    if not versions:
        output.echo("No versions.")
        return
    output.table(["version", "stage", "aliases", "digest", "run"],
                 [(mv.version, mv.current_stage, ", ".join(mv.aliases) or "-",
                   mv.digest[:12], mv.run_id or "-") for mv in versions])


@models.command("versions")
@click.argument("name")
@click.option("--filter", "filter_string", default="",
              help="E.g. \"current_stage = 'Production'\" or \"alias = 'champion'\".")
@output.json_option
def models_versions(name: str, filter_string: str, as_json: bool) -> None:
    """The versions of model NAME, newest first."""
    from cairn.commands import models as commands

    versions = commands.versions(name=name, filter_string=filter_string)
    if as_json:
        output.emit_json([_version_dict(v) for v in versions])
        return
    _versions_table(versions)


@models.command("register")
@click.argument("source")
@click.option("-n", "--name", required=True, help="The registered model's name.")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A version tag.")
@click.option("-d", "--description", default="", help="A description of this version.")
@output.json_option
def models_register(source: str, name: str, tags: tuple[str, ...], description: str,
                    as_json: bool) -> None:
    """Register SOURCE (runs:/ID/PATH, models:/…, a directory, a file or a tracked path)
    as the next version of NAME."""
    from cairn.commands import models as commands

    mv = commands.register(source=source, name=name, tags=_pairs(tags),
                           description=description)
    if as_json:
        output.emit_json(_version_dict(mv))
        return
    output.echo(f"Registered {mv.name!r} version {mv.version} (digest {mv.digest[:12]}).")


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        pairs[key] = value
    return pairs


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--to", "stage", required=True, help="Staging, Production, Archived or None.")
@click.option("--archive-existing", is_flag=True,
              help="Archive the versions now in that stage, in the same transaction.")
@click.option("--reason", default="", help="Why; kept in the audit log.")
@output.json_option
def models_promote(name: str, version: str, stage: str, archive_existing: bool, reason: str,
                   as_json: bool) -> None:
    """Move VERSION of model NAME to a stage."""
    from cairn.commands import models as commands

    done = commands.promote(name=name, version=version, stage=stage,
                            archive_existing=archive_existing, reason=reason)
    mv = done.version
    if as_json:
        output.emit_json({"version": _version_dict(mv), "previous_stage": done.previous_stage,
                          "archived": list(done.archived)})
        return
    archived = (f"; archived {', '.join(f'v{v}' for v in done.archived)}"
                if done.archived else "")
    output.echo(f"{mv.name!r} v{mv.version}: {done.previous_stage} → {mv.current_stage}"
                f"{archived}.")


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@output.json_option
def models_alias(name: str, alias: str, version: str | None, delete: bool,
                 as_json: bool) -> None:
    """Point ALIAS of model NAME at VERSION (models:/NAME@ALIAS), or --delete it."""
    from cairn.commands import models as commands

    if delete:
        done = commands.delete_alias(name=name, alias=alias)
    elif version is None:
        raise click.UsageError("give the VERSION the alias points at, or --delete")
    else:
        done = commands.set_alias(name=name, alias=alias, version=version)
    if as_json:
        output.emit_json(asdict(done))
    elif done.version is None:
        output.echo(f"Removed alias {alias!r} of {name!r}.")
    else:
        output.echo(f"models:/{name}@{alias} → version {done.version}.")


@models.command("history")
@click.argument("name")
@click.option("--stage", help="With --at: which version held this stage.")
@click.option("--at", "at", help="A date (YYYY-MM-DD, its end) or date-time; with --stage.")
@output.json_option
def models_history(name: str, stage: str | None, at: str | None, as_json: bool) -> None:
    """The audit log of model NAME; or, with --stage and --at, who held a stage then."""
    from cairn.commands import models as commands

    if stage or at:
        held = commands.holders(name=name, stage=stage or "Production", at=at or "now")
        if as_json:
            output.emit_json(asdict(held))
        else:
            _show_holders(name, held)
        return
    entries = commands.history(name=name)
    if as_json:
        output.emit_json([asdict(e) for e in entries])
    else:
        _show_history(entries)


def _show_holders(name: str, held: StageHolders) -> None:
    if not held.versions:
        output.echo(f"No version of {name!r} was in {held.stage} at {when(held.at)}.")
    for v in held.versions:
        output.echo(f"{name!r} v{v} held {held.stage} at {when(held.at)} "
                    f"(since {when(held.since[v])}).")


def _show_history(entries: list[AuditEntry]) -> None:
    output.table(["when", "version", "action", "from", "to", "who", "reason"],
                 [(day(e.timestamp), "-" if e.version is None else f"v{e.version}",
                   _action(e.action, e.details), e.from_value or "-", e.to_value or "-",
                   e.user_id or "-", e.reason or "")
                  for e in entries])


def _action(action: str, details: Mapping[str, object]) -> str:
    """An audit action as people read it: which alias moved, not only that one did."""
    alias = details.get("alias")
    return f"{action} {alias}" if alias else action


@models.command("lineage")
@click.argument("uri")
@output.json_option
def models_lineage(uri: str, as_json: bool) -> None:
    """The whole chain behind a model: git commit, data, params, stage, run, metrics,
    registry transitions."""
    from cairn.commands import models as commands

    chain = commands.lineage_of(uri=uri)
    if as_json:
        output.emit_json(chain)
        return
    _show_lineage(chain)


def _show_lineage(chain: dict[str, Any]) -> None:
    from cairn.commands.models import flat_params

    model, git, run = chain["model"], chain["git"], chain["run"]
    rows: list[tuple[str, str]] = [("model", chain["uri"]), ("digest", chain["digest"])]
    if model:
        rows.append(("version", f"{model['name']} v{model['version']} ({model['stage']})"
                     + (f", aliases {', '.join(model['aliases'])}" if model["aliases"] else "")))
    if git["commit"]:
        rows.append(("git commit", git["commit"] + (" (dirty)" if git["dirty"] else "")
                     + (f", tags {', '.join(git['tags'])}" if git["tags"] else "")
                     + (f", branch {git['branch']}" if git["branch"] else "")))
    if chain["pipeline_stage"]:
        stage = chain["pipeline_stage"]
        rows.append(("pipeline stage", f"{stage['stage']} (out {stage['out']})"))
    if run:
        rows.append(("run", f"{run['run_id']} ({run['run_name']}) in {run['experiment']!r}, "
                            f"{run['status']}"))
    rows += [(f"data {path}", digest[:16]) for path, digest in sorted(chain["data"].items())]
    rows += [(f"param {k}", str(v)) for k, v in sorted(chain["params"].items())]
    rows += [(f"params.yaml {k}", str(v))
             for k, v in sorted(flat_params(chain).items())]
    rows += [(f"metric {k}", f"{v:.6g}") for k, v in sorted(chain["metrics"].items())]
    rows += [(f"{when(t['timestamp'])}", f"{_action(t['action'], t['details'])} v{t['version']}: "
              f"{t['from_value'] or '-'} → {t['to_value'] or '-'} by {t['user_id'] or '-'}"
              + (f" ({t['reason']})" if t["reason"] else ""))
             for t in chain["transitions"]]
    output.table(["", ""], rows)


COMMANDS: list[click.Command] = [models]
