"""Promotion gates: a model's YAML policy, validated once, evaluated on every promotion.

    Production:                       # a stage (any case) → the rules for entering it
      - metric: f1
        min_improvement: 0.005        # beat the version holding Production now
      - metric: accuracy
        min: 0.90
      - require: [signature, git_clean, data_pushed, smoke_test]
      - approval: required
        approvers: 2
      - webhook: https://eval.example.com/check
        timeout: 10
    aliases:
      champion:
        protected: true               # only a MANAGE holder moves it; its version stays
        rules:
          - metric: f1
            min: 0.9

Rules are data, never code: every key is checked when the policy is set, and an unknown
rule, option or stage is one error naming the file and line. The validated policy is
stored as JSON (`document`), and evaluating it only compares numbers and asks the
requirement checks in `cairn.registry.requirements`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.registry import stages
from cairn.store.entities import Verdict as Verdict  # it lived here first

METRIC_BOUNDS = ("min", "max", "min_improvement", "max_regression")
REQUIREMENTS = ("signature", "git_clean", "data_pushed", "lineage_complete", "smoke_test",
                "reproducible")
RULE_KINDS = {  # the key naming a rule's kind → the options it may carry
    "metric": {*METRIC_BOUNDS, "better"},
    "require": {"timeout", "trusted"},
    "approval": {"approvers"},
    "webhook": {"timeout", "secret_env"},
}
SMOKE_TIMEOUT = 60.0
WEBHOOK_TIMEOUT = 10.0
MAX_TIMEOUT = 3600.0


@dataclass(frozen=True)
class GateResult:
    """The gates' answer for one candidate and target: truthy when every rule passes.

    `approvals_required` > 0 means the policy also wants that many approvers: a passing
    promotion then opens a request instead of moving (and `should_promote` is still
    truthy: the seed's "either transitions the stage or opens a review request")."""

    name: str
    version: int | None
    target: str  # "Production", or "@champion"
    verdicts: tuple[Verdict, ...]
    policy_version: int = 0
    approvals_required: int = 0

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failing(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    @property
    def reasons(self) -> list[str]:
        """One line per rule, failing ones first."""
        return [str(v) for v in (*self.failing, *(v for v in self.verdicts if v.passed))]

    def details(self) -> dict[str, object]:
        """What an audit row records of this evaluation."""
        return {"policy_version": self.policy_version,
                "verdicts": [v.to_dict() for v in self.verdicts]}


@dataclass(frozen=True)
class Policy:
    """A validated policy: the rules per stage and per alias, and which aliases are
    protected. `document` is its stored form."""

    stages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0

    @property
    def protected_aliases(self) -> list[str]:
        return sorted(a for a, spec in self.aliases.items() if spec.get("protected"))

    @property
    def document(self) -> dict[str, object]:
        return {"stages": self.stages, "aliases": self.aliases,
                "protected_aliases": self.protected_aliases}

    @classmethod
    def from_document(cls, document: dict[str, Any], version: int = 0) -> Policy:
        return cls(dict(document.get("stages") or {}), dict(document.get("aliases") or {}),
                   version)

    def rules_for(self, target: str) -> list[dict[str, Any]]:
        """The rules of a stage ("Production") or an alias ("@champion")."""
        if target.startswith("@"):
            return list(self.aliases.get(target[1:], {}).get("rules", []))
        return list(self.stages.get(target, []))

    def is_protected(self, alias: str) -> bool:
        return bool(self.aliases.get(alias, {}).get("protected"))


def target_name(target: str) -> str:
    """How a target reads in messages: "Production", "alias 'champion'"."""
    return f"alias '{target[1:]}'" if target.startswith("@") else target


# -- parsing -----------------------------------------------------------------------------

def parse(text: str, path: str = "gates.yaml") -> Policy:
    """The policy in `text`, validated; FormatError naming `path` and the line otherwise."""
    import yaml

    from cairn import yamlfile

    loader_class = yamlfile.safe_loader()
    try:
        root = yaml.compose(text, Loader=loader_class)
    except yaml.YAMLError as e:
        problem, line = yamlfile.error_position(e)
        raise FormatError(f"{problem}; fix the YAML", path, line) from None
    if root is None:
        raise FormatError("the policy is empty; give a stage (e.g. Production:) and its "
                          "rules", path, 1)
    reader = _Reader(path, loader_class(""))
    return reader.policy(root)


class _Reader:
    """Walks the composed YAML nodes, so every error can name its line."""

    def __init__(self, path: str, constructor: Any) -> None:
        self.path = path
        self.constructor = constructor

    def fail(self, node: Any, message: str) -> FormatError:
        return FormatError(message, self.path, node.start_mark.line + 1)

    def scalar(self, node: Any) -> Any:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "expected a single value here, not a list or mapping")
        return self.constructor.construct_object(node, deep=True)

    def mapping(self, node: Any, what: str) -> Iterator[tuple[Any, Any, Any]]:
        """(key, key node, value node) of a mapping node; duplicate keys refused."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping (key: value)")
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if key in seen:
                raise self.fail(key_node, f"'{key}' is given twice in {what}")
            seen.add(key)
            yield key, key_node, value_node

    def sequence(self, node: Any, what: str) -> list[Any]:
        import yaml

        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list of rules (each starting with '- ')")
        return list(node.value)

    def policy(self, root: Any) -> Policy:
        found = Policy()
        for key, key_node, value in self.mapping(root, "the policy"):
            if key == "aliases":
                for alias, alias_node, spec in self.mapping(value, "aliases"):
                    found.aliases[str(alias)] = self.alias(str(alias), alias_node, spec)
                continue
            try:
                stage = stages.canonical(str(key))
            except UserError:
                raise self.fail(key_node, f"unknown stage '{key}'; the policy's keys are "
                                f"stages ({', '.join(stages.STAGES)}) and 'aliases'") from None
            if stage in found.stages:
                raise self.fail(key_node, f"stage {stage} is given twice")
            found.stages[stage] = [self.rule(n) for n in self.sequence(value, stage)]
        return found

    def alias(self, alias: str, alias_node: Any, node: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"protected": False, "rules": []}
        if not alias or alias.lower() == "latest" or "/" in alias or "@" in alias:
            raise self.fail(alias_node, f"'{alias}' cannot be an alias name")
        for key, key_node, value in self.mapping(node, f"alias '{alias}'"):
            if key == "protected":
                flag = self.scalar(value)
                if not isinstance(flag, bool):
                    raise self.fail(value, "protected must be true or false")
                spec["protected"] = flag
            elif key == "rules":
                spec["rules"] = [self.rule(n) for n in self.sequence(value, f"alias '{alias}'")]
            else:
                raise self.fail(key_node, f"unknown key '{key}' for alias '{alias}'; use "
                                "protected and rules")
        return spec

    def rule(self, node: Any) -> dict[str, Any]:
        items = {key: (key_node, value) for key, key_node, value in self.mapping(node, "a rule")}
        kinds = [k for k in items if k in RULE_KINDS]
        if len(kinds) != 1:
            unknown = [k for k in items if k not in RULE_KINDS
                       and not any(k in opts for opts in RULE_KINDS.values())]
            if unknown:
                raise self.fail(items[unknown[0]][0], f"unknown rule '{unknown[0]}'; rules "
                                f"are {', '.join(RULE_KINDS)}")
            raise self.fail(node, "a rule needs exactly one of " + ", ".join(RULE_KINDS)
                            + (f" (this one has {', '.join(kinds)})" if kinds else ""))
        kind = kinds[0]
        for key, (key_node, _) in items.items():
            if key != kind and key not in RULE_KINDS[kind]:
                raise self.fail(key_node, f"unknown option '{key}' for a {kind} rule; it "
                                f"takes {', '.join(sorted(RULE_KINDS[kind])) or 'none'}")
        rule: dict[str, Any] = {"kind": kind, "line": node.start_mark.line + 1}
        getattr(self, f"_{kind}")(rule, items)
        return rule

    def _metric(self, rule: dict[str, Any], items: dict[str, tuple[Any, Any]]) -> None:
        name_node = items["metric"][1]
        name = self.scalar(name_node)
        if not isinstance(name, str) or not name:
            raise self.fail(name_node, "metric must name a metric the run logged, e.g. f1")
        rule["metric"] = name
        bounds = [b for b in METRIC_BOUNDS if b in items]
        if not bounds:
            raise self.fail(name_node, f"metric rule '{name}' needs one of "
                            f"{', '.join(METRIC_BOUNDS)}")
        for bound in bounds:
            value = self.scalar(items[bound][1])
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise self.fail(items[bound][1], f"{bound} must be a number, not {value!r}")
            if bound in ("min_improvement", "max_regression") and value < 0:
                raise self.fail(items[bound][1], f"{bound} must be 0 or more")
            rule[bound] = float(value)
        better = self.scalar(items["better"][1]) if "better" in items else "higher"
        if better not in ("higher", "lower"):
            raise self.fail(items["better"][1], "better must be higher or lower")
        rule["better"] = better

    def _require(self, rule: dict[str, Any], items: dict[str, tuple[Any, Any]]) -> None:
        import yaml

        node = items["require"][1]
        names = ([self.scalar(n) for n in node.value] if isinstance(node, yaml.SequenceNode)
                 else [self.scalar(node)])
        for name in names:
            if name not in REQUIREMENTS:
                raise self.fail(node, f"unknown requirement {name!r}; requirements are "
                                f"{', '.join(REQUIREMENTS)}")
        if not names:
            raise self.fail(node, "require needs at least one requirement")
        rule["require"] = list(dict.fromkeys(names))
        rule["timeout"] = self._timeout(items, SMOKE_TIMEOUT)
        # smoke_test loads the model: a pickle (or a model's own code) runs only if trusted
        trusted = self.scalar(items["trusted"][1]) if "trusted" in items else False
        if not isinstance(trusted, bool):
            raise self.fail(items["trusted"][1], "trusted must be true or false")
        rule["trusted"] = trusted

    def _approval(self, rule: dict[str, Any], items: dict[str, tuple[Any, Any]]) -> None:
        node = items["approval"][1]
        if self.scalar(node) != "required":
            raise self.fail(node, "approval takes one value: required")
        count = self.scalar(items["approvers"][1]) if "approvers" in items else 1
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise self.fail(items.get("approvers", (node, node))[1],
                            "approvers must be a whole number from 1 to 100")
        rule["approvers"] = count

    def _webhook(self, rule: dict[str, Any], items: dict[str, tuple[Any, Any]]) -> None:
        node = items["webhook"][1]
        url = self.scalar(node)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self.fail(node, f"webhook must be an http:// or https:// URL, not {url!r}")
        rule["webhook"] = url
        rule["timeout"] = self._timeout(items, WEBHOOK_TIMEOUT)
        secret = self.scalar(items["secret_env"][1]) if "secret_env" in items else None
        if secret is not None and (not isinstance(secret, str) or not secret.isidentifier()):
            raise self.fail(items["secret_env"][1], "secret_env must name an environment "
                            "variable (the secret itself never goes in the policy)")
        rule["secret_env"] = secret

    def _timeout(self, items: dict[str, tuple[Any, Any]], default: float) -> float:
        if "timeout" not in items:
            return default
        value = self.scalar(items["timeout"][1])
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= MAX_TIMEOUT:
            raise self.fail(items["timeout"][1], f"timeout must be seconds, more than 0 and "
                            f"at most {MAX_TIMEOUT:.0f}")
        return float(value)


# -- metric rules --------------------------------------------------------------------------

def metric_verdicts(rule: dict[str, Any], candidate: dict[str, float],
                    current: dict[str, float] | None, holder: str) -> list[Verdict]:
    """The verdicts of one metric rule. `current` is the target holder's metrics (None
    when nothing holds the target: improvements then pass, as the seed's "no
    Production yet")."""
    name = rule["metric"]
    lower = rule.get("better") == "lower"
    value = candidate.get(name)
    out: list[Verdict] = []
    for bound in METRIC_BOUNDS:
        if bound not in rule:
            continue
        limit = rule[bound]
        label = f"{name} {bound}"
        if value is None:
            out.append(Verdict(label, _expected(bound, limit, lower, current, name, holder),
                               f"the run logged no metric '{name}'", False))
            continue
        if bound == "min":
            out.append(Verdict(label, f">= {_num(limit)}", _num(value), value >= limit))
        elif bound == "max":
            out.append(Verdict(label, f"<= {_num(limit)}", _num(value), value <= limit))
        elif current is None:
            out.append(Verdict(label, f"no {holder} to compare with", _num(value), True))
        elif name not in current:
            out.append(Verdict(label, _expected(bound, limit, lower, current, name, holder),
                               f"{holder} has no metric '{name}' to compare with", False))
        else:
            out.append(Verdict(label, _expected(bound, limit, lower, current, name, holder),
                               _num(value), _compare(bound, value, current[name], limit,
                                                     lower)))
    return out


def _compare(bound: str, value: float, held: float, limit: float, lower: bool) -> bool:
    # The same float expressions as the seed's `candidate_f1 > prod_f1 + 0.005`.
    if bound == "min_improvement":
        return value < held - limit if lower else value > held + limit
    return value <= held + limit if lower else value >= held - limit


def _expected(bound: str, limit: float, lower: bool, current: dict[str, float] | None,
              name: str, holder: str) -> str:
    if bound == "min":
        return f">= {_num(limit)}"
    if bound == "max":
        return f"<= {_num(limit)}"
    held = None if current is None else current.get(name)
    base = holder if held is None else f"{holder} {_num(held)}"
    if bound == "min_improvement":
        return f"< {base} - {_num(limit)}" if lower else f"> {base} + {_num(limit)}"
    return f"<= {base} + {_num(limit)}" if lower else f">= {base} - {_num(limit)}"


def _num(value: float) -> str:
    return f"{value:.6g}"


def approval_verdict(required: int, approvers: Sequence[str]) -> Verdict:
    who = ", ".join(approvers) if approvers else "nobody yet"
    return Verdict("approval", f"{required} approver{'s' if required > 1 else ''}, not the "
                   "requester", f"approved by {who}", len(approvers) >= required)
