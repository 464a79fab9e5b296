"""Model registry commands: models list/show/versions/register/promote/alias/history/
lineage, and the governance ones: gates, requests, approve/reject, permissions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output
from cairn.cli._client import day, when
from cairn.cli.webhooks_cmd import webhooks

if TYPE_CHECKING:
    from cairn.commands.models import Permissions
    from cairn.registry.gates import GateResult, Verdict
    from cairn.registry.history import StageHolders
    from cairn.registry.promotion import Promotion
    from cairn.store.entities import (
        AuditEntry,
        DecisionResult,
        ModelVersion,
        PromotionRequest,
        RegisteredModel,
    )

REPORTS = ("table", "md")
report_option = click.option(
    "--report", type=click.Choice(REPORTS), default="table", show_default=True,
    help="How to show the gates' verdicts: a table, or Markdown (for a pull-request comment).")


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
@click.option("--request", is_flag=True,
              help="Open a promotion request for a MANAGE holder to approve instead.")
@click.option("--force", is_flag=True,
              help="Skip the gates (MANAGE only; recorded as forced, with what failed).")
@report_option
@output.json_option
def models_promote(name: str, version: str, stage: str, archive_existing: bool, reason: str,
                   request: bool, force: bool, report: str, as_json: bool) -> None:
    """Move VERSION of model NAME to a stage, if its gates pass (exit 1 with their verdict
    table if not)."""
    from cairn.commands import models as commands

    with _refusal_shown(report, as_json):
        done = commands.promote(name=name, version=version, stage=stage,
                                archive_existing=archive_existing, reason=reason,
                                request=request, force=force)
    _show_promotion(done, report, as_json)


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@click.option("--reason", default="", help="Why; kept in the audit log.")
@click.option("--request", is_flag=True,
              help="Open a request for a MANAGE holder to approve instead.")
@click.option("--force", is_flag=True, help="Skip the alias's gates (MANAGE only).")
@report_option
@output.json_option
def models_alias(name: str, alias: str, version: str | None, delete: bool, reason: str,
                 request: bool, force: bool, report: str, as_json: bool) -> None:
    """Point ALIAS of model NAME at VERSION (models:/NAME@ALIAS), or --delete it. An alias
    the gate policy names moves only through its gates."""
    from cairn.commands import models as commands

    if delete:
        removed = commands.delete_alias(name=name, alias=alias)
        if as_json:
            output.emit_json(asdict(removed))
        else:
            output.echo(f"Removed alias {alias!r} of {name!r}.")
        return
    if version is None:
        raise click.UsageError("give the VERSION the alias points at, or --delete")
    with _refusal_shown(report, as_json):
        done = commands.set_alias(name=name, alias=alias, version=version, reason=reason,
                                  request=request, force=force)
    _show_promotion(done, report, as_json)


def _show_promotion(done: Promotion, report: str, as_json: bool) -> None:
    gates = done.gates
    if as_json:
        moved = done.moved
        output.emit_json({
            "name": done.name, "version": done.version, "target": done.target,
            "forced": done.forced, "gates": _result_dict(gates),
            "moved": None if moved is None else {
                "version": _version_dict(moved.version), "previous_stage": moved.previous_stage,
                "archived": list(moved.archived)},
            "alias": None if done.alias is None else asdict(done.alias),
            "request": None if done.request is None else _request_dict(done.request)})
        return
    if gates.verdicts:
        _show_verdicts(gates.verdicts, report, _title(gates))
    forced = " (forced: gates skipped)" if done.forced else ""
    if done.request is not None:
        req = done.request
        why = (f"its policy wants {gates.approvals_required} approval(s)"
               if gates.approvals_required else "as asked")
        output.echo(f"Opened request {req.id}: {done.name!r} v{done.version} → "
                    f"{_target(done.target)}, {why}. A MANAGE holder approves it with "
                    f"`cairn models approve {req.id}`.")
    elif done.moved is not None:
        moved = done.moved
        mv = moved.version
        archived = (f"; archived {', '.join(f'v{v}' for v in moved.archived)}"
                    if moved.archived else "")
        output.echo(f"{mv.name!r} v{mv.version}: {moved.previous_stage} → {mv.current_stage}"
                    f"{archived}{forced}.")
    else:
        output.echo(f"models:/{done.name}{done.target} → version {done.version}{forced}.")


@contextlib.contextmanager
def _refusal_shown(report: str, as_json: bool) -> Iterator[None]:
    """A refusal by the gates shows its verdict table, then fails as one error line."""
    from cairn.errors import GateRefused

    try:
        yield
    except GateRefused as refused:
        if as_json:
            output.emit_json({"refused": str(refused),
                              "verdicts": [_verdict_dict(v) for v in refused.verdicts]})
        else:
            _show_verdicts(refused.verdicts, report, "Refused by the gates")
        raise


def _title(result: GateResult) -> str:
    state = "pass" if result.passed else "refused"
    version = f" v{result.version}" if result.version is not None else ""
    return f"Gates for {result.name!r}{version} → {_target(result.target)}: {state}"


def _target(target: str) -> str:
    return f"alias {target[1:]!r}" if target.startswith("@") else target


def _show_verdicts(verdicts: Sequence[Verdict], report: str, title: str) -> None:
    if report == "md":
        click.echo(_markdown(verdicts, title), nl=False)
        return
    if not verdicts:
        output.echo(f"{title} (no rules for it).")
        return
    output.table(["rule", "expected", "actual", "result"],
                 [(v.rule, v.expected, v.actual, "pass" if v.passed else "FAIL")
                  for v in verdicts], title=title, no_wrap=(0, 3))


def _markdown(verdicts: Sequence[Verdict], title: str) -> str:
    """The verdict table as GitHub-flavoured Markdown."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"### {cell(title)}", "", "| rule | expected | actual | result |",
             "|---|---|---|---|"]
    lines += [f"| {cell(v.rule)} | {cell(v.expected)} | {cell(v.actual)} | "
              f"{'pass' if v.passed else '**FAIL**'} |" for v in verdicts]
    if not verdicts:
        lines.append("| (no rules for this target) | | | pass |")
    return "\n".join(lines) + "\n"


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    return {"rule": v.rule, "expected": v.expected, "actual": v.actual, "passed": v.passed}


def _result_dict(result: GateResult) -> dict[str, Any]:
    return {"passed": result.passed, "policy_version": result.policy_version,
            "approvals_required": result.approvals_required,
            "verdicts": [_verdict_dict(v) for v in result.verdicts]}


# -- gates ----------------------------------------------------------------------------------

@models.group("gates")
def gates_group() -> None:
    """A model's promotion gates: set a YAML policy, show it, check a version."""


@gates_group.command("set")
@click.argument("name")
@click.argument("policy_file", type=click.Path(dir_okay=False, path_type=Path))
@output.json_option
def gates_set(name: str, policy_file: Path, as_json: bool) -> None:
    """Set model NAME's gate policy from POLICY_FILE (a new policy version; MANAGE)."""
    from cairn.commands import models as commands
    from cairn.errors import UserError

    try:
        text = policy_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {policy_file}: {getattr(e, 'strerror', None) or e}; "
                        "give a readable UTF-8 YAML file") from None
    policy = commands.set_gates(name=name, text=text, path=str(policy_file))
    if as_json:
        output.emit_json(asdict(policy))
        return
    document = policy.document
    stages = document.get("stages")
    parts = ([f"{stage}: {len(rules)} rule(s)" for stage, rules in stages.items()]
             if isinstance(stages, dict) else [])
    parts += [f"alias {a}: protected" for a in policy.protected_aliases]
    output.echo(f"Gate policy v{policy.policy_version} set on {name!r} ("
                + ("; ".join(parts) or "no rules") + ").")


@gates_group.command("show")
@click.argument("name")
@click.option("--version", "policy_version", type=int, help="An earlier policy version.")
@output.json_option
def gates_show(name: str, policy_version: int | None, as_json: bool) -> None:
    """Model NAME's gate policy (the one in force, or --version N)."""
    from cairn.commands import models as commands

    policy = commands.gates(name=name, version=policy_version)
    if as_json:
        output.emit_json(None if policy is None else asdict(policy))
    elif policy is None:
        output.echo(f"Model {name!r} has no gate policy: every promotion passes "
                    f"(`cairn models gates set {name} gates.yaml`).")
    else:
        output.echo(f"# policy v{policy.policy_version} of {name!r}, set by "
                    f"{policy.user_id or '-'} on {when(policy.created)}")
        click.echo(policy.source, nl=not policy.source.endswith("\n"))


@gates_group.command("check")
@click.argument("name")
@click.argument("version")
@click.option("--to", "target", required=True,
              help="The stage (Production…) or @alias the version would enter.")
@report_option
@output.json_option
def gates_check(name: str, version: str, target: str, report: str, as_json: bool) -> None:
    """Evaluate the gates on VERSION of NAME without promoting; exit 1 if they refuse."""
    from cairn.commands import models as commands

    result = commands.check_gates(name=name, version=version, target=target)
    if as_json:
        output.emit_json(_result_dict(result))
    else:
        _show_verdicts(result.verdicts, report, _title(result))
        if result.approvals_required and report != "md":
            output.echo(f"Needs {result.approvals_required} approval(s): promoting opens a "
                        "request.")
    if not result.passed:
        raise SystemExit(1)


# -- requests -------------------------------------------------------------------------------

@models.command("requests")
@click.argument("name", required=False)
@click.option("--state", type=click.Choice(["open", "approved", "rejected"]),
              help="Only requests in this state.")
@output.json_option
def models_requests(name: str | None, state: str | None, as_json: bool) -> None:
    """Promotion requests (of model NAME, or all), newest first."""
    from cairn.commands import models as commands

    found = commands.requests(name=name, state=state)
    if as_json:
        output.emit_json([_request_dict(r) for r in found])
        return
    if not found:
        output.echo("No promotion requests" + (f" in state {state}" if state else "") + ".")
        return
    output.table(["id", "model", "version", "to", "state", "by", "when", "approvals", "note"],
                 [(r.id, r.name, f"v{r.version}", _target(r.target), r.state, r.requested_by,
                   day(r.created), ", ".join(a.user_id for a in r.approvals) or "-",
                   r.decision_comment or r.reason) for r in found])


def _request_dict(r: PromotionRequest) -> dict[str, Any]:
    return asdict(r)


@models.command("approve")
@click.argument("request_id", type=int)
@click.option("--comment", default="", help="Kept with the approval.")
@output.json_option
def models_approve(request_id: int, comment: str, as_json: bool) -> None:
    """Approve promotion request REQUEST_ID (MANAGE; not your own): its gates are
    evaluated again, and the version moves once it has its approvals."""
    from cairn.commands import models as commands

    with _refusal_shown("table", as_json):
        decided = commands.approve(request_id=request_id, comment=comment)
    _show_decision(decided, as_json)


@models.command("reject")
@click.argument("request_id", type=int)
@click.option("--comment", required=True, help="Why (kept in the audit log).")
@output.json_option
def models_reject(request_id: int, comment: str, as_json: bool) -> None:
    """Reject promotion request REQUEST_ID (MANAGE)."""
    from cairn.commands import models as commands

    _show_decision(commands.reject(request_id=request_id, comment=comment), as_json)


def _show_decision(decided: DecisionResult, as_json: bool) -> None:
    req = decided.request
    if as_json:
        applied = decided.applied
        output.emit_json({"request": _request_dict(req),
                          "applied": None if applied is None else asdict(applied)})
        return
    if req.state == "rejected":
        output.echo(f"Rejected request {req.id} ({req.name!r} v{req.version} → "
                    f"{_target(req.target)}).")
    elif req.state == "approved":
        output.echo(f"Approved request {req.id}: {req.name!r} v{req.version} → "
                    f"{_target(req.target)} (approved by "
                    f"{', '.join(a.user_id for a in req.approvals)}).")
    else:
        output.echo(f"Approval recorded on request {req.id} ({len(req.approvals)} so far); "
                    "it needs more before the version moves.")


# -- permissions ----------------------------------------------------------------------------

@models.command("permissions")
@click.argument("name")
@click.argument("user", required=False)
@click.argument("level", required=False, type=click.Choice(["READ", "EDIT", "MANAGE"],
                                                           case_sensitive=False))
@click.option("--revoke", is_flag=True, help="Remove USER's grant.")
@output.json_option
def models_permissions(name: str, user: str | None, level: str | None, revoke: bool,
                       as_json: bool) -> None:
    """Who may do what on model NAME; with USER LEVEL, grant it ('*' is everyone else)."""
    from cairn.commands import models as commands

    if user is not None and (level is None) != revoke:
        raise click.UsageError("give USER and a LEVEL (READ, EDIT, MANAGE), or USER --revoke")
    shown = (commands.set_permission(name=name, user=user, level=None if revoke else level)
             if user is not None else commands.permissions(name=name))
    if as_json:
        output.emit_json(asdict(shown))
        return
    _show_permissions(shown)


def _show_permissions(shown: Permissions) -> None:
    rows = [(u, level) for u, level in sorted(shown.grants.items())]
    output.table(["user", "level"], rows or [("(nobody)", "")],
                 title=f"Permissions on {shown.name!r}")
    output.echo(f"You ({shown.you}) hold {shown.your_level}.")


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
              + (f" ({t['reason']})" if t["reason"] else "") + _gate_summary(t['details']))
             for t in chain["transitions"]]
    rows += [(f"request {r['id']}", f"open: v{r['version']} → {_target(r['target'])}, asked by "
              f"{r['requested_by']} on {day(r['created'])}"
              + (f", approved by {', '.join(a['user_id'] for a in r['approvals'])}"
                 if r["approvals"] else ""))
             for r in chain.get("requests", [])]
    rows += [(f"package {p['digest'][7:23]}", f"built by {p['user_id'] or '-'} on "
              f"{when(p['created_time'])}, {output.human_size(p['size'])} "
              f"(object {p['object_id'][:16]})") for p in chain.get("packages", [])]
    if chain.get("reproduction"):
        last = chain["reproduction"]
        rows.append(("reproduced", f"{last['to_value']} on {when(last['timestamp'])}: "
                                   f"{last['reason']}"))
    output.table(["", ""], rows)


def _gate_summary(details: Mapping[str, Any]) -> str:
    """What the gates said about a transition, in a few words: 3/3 pass, or forced."""
    gates = details.get("gates") or {}
    verdicts = gates.get("verdicts") or [] if isinstance(gates, Mapping) else []
    parts = []
    if verdicts:
        passed = sum(1 for v in verdicts if v.get("passed"))
        parts.append(f"gates {passed}/{len(verdicts)} pass")
    if details.get("forced"):
        failing = ", ".join(v.get("rule", "?") for v in details.get("failing") or [])
        parts.append("FORCED" + (f" past {failing}" if failing else ""))
    if own := details.get("verdicts"):  # a refusal's own row
        refused = [v.get("rule", "?") for v in own if not v.get("passed")]
        if refused:
            parts.append("failed: " + ", ".join(refused))
    return f" [{'; '.join(parts)}]" if parts else ""


models.add_command(webhooks)
COMMANDS: list[click.Command] = [models]
