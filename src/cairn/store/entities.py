"""What the metadata store holds, as small frozen values named as MLflow users know them.

Times are milliseconds since the epoch (MLflow's convention), versions are integers.
Run artifacts and model versions name objects by digest: the bytes live in the
content-addressed store, the database holds only the digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

ACTIVE = "active"
DELETED = "deleted"

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")

T = TypeVar("T")


class ViewType:
    """Which runs or experiments a search sees: MLflow's numbers, so ported code works."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


class PagedList(list[T], Generic[T]):
    """A page of results; `token` fetches the next page (None on the last one)."""

    def __init__(self, items: list[T], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int = 0
    last_update_time: int = 0


# How the wire codec (cairn.store.wire) writes these values' floats: JSON has no NaN.
WIRE_CONFIG = {"ser_json_inf_nan": "strings"}


@dataclass(frozen=True)
class Metric:
    __pydantic_config__ = WIRE_CONFIG

    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str  # "runs:/<run_id>" resolves through the store's artifact records
    user_id: str = ""

    @property
    def run_uuid(self) -> str:  # MLflow's older name
        return self.run_id


@dataclass(frozen=True)
class RunData:
    __pydantic_config__ = WIRE_CONFIG

    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each key
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class Artifact:
    """One path in a run's artifact tree, naming an object (a file or a manifest)."""

    run_id: str
    path: str  # relative to the run's artifact root, posix
    digest: str  # blake3 of the file, or of the directory manifest
    size: int
    is_dir: bool = False


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str = "None"
    description: str = ""
    user_id: str = ""
    source: str = ""  # what the user registered: runs:/…/model, a path
    run_id: str | None = None
    status: str = "READY"
    digest: str = ""  # the immutable model: manifest digest of its directory
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    run_link: str = ""


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version
    latest_versions: tuple[ModelVersion, ...] = ()  # the newest version in each stage


@dataclass(frozen=True)
class AuditEntry:
    """One change to a model's versions: who, when, what it was, what it became, why."""

    id: int
    name: str
    version: int | None
    action: str  # register, transition, set_alias, delete_alias, delete_version, update
    from_value: str | None  # a stage, an alias's previous version…
    to_value: str | None
    user_id: str
    timestamp: int
    reason: str = ""
    details: dict[str, object] = field(default_factory=dict)  # e.g. gate results


@dataclass(frozen=True)
class Expected:
    """The registry state a decision was taken on: the version's stage, the versions
    holding the target (a stage, or the alias), and the gate policy version in force
    (0: none). The store refuses the change if any of them differs in its transaction."""

    stage: str | None  # None: not checked
    holders: tuple[int, ...] | None  # None: not checked
    policy_version: int


@dataclass(frozen=True)
class StageChange:
    """One promotion, as the registry planned it and the store applies it in one
    transaction: `version` of `name` moves to `stage`; with `archive_others_to`, every
    other version then in `stage` moves there too. The store checks none of it."""

    name: str
    version: int
    stage: str
    archive_others_to: str | None = None
    user_id: str = ""
    reason: str = ""  # the promotion's audit row
    archive_reason: str = ""  # each archived version's audit row
    details: dict[str, object] = field(default_factory=dict)  # e.g. gate verdicts
    # What the gates saw when they passed; if the transaction finds otherwise, the
    # registry changed while they ran and the store refuses (ConflictError).
    expected: Expected | None = None


@dataclass(frozen=True)
class StageChangeResult:
    """What the transaction did, read inside it: reports built from it cannot race."""

    version: ModelVersion  # as it is after the change
    previous_stage: str
    archived: tuple[int, ...]  # the versions moved to `archive_others_to`, ascending
    audit: AuditEntry  # the promotion's audit row


@dataclass(frozen=True)
class AliasMove:
    """An alias set to `version` of `name`, or deleted (`version` None), as the registry
    planned it; the store applies it in one transaction with its audit row."""

    name: str
    alias: str
    version: int | None
    user_id: str = ""
    reason: str = ""
    details: dict[str, object] = field(default_factory=dict)  # e.g. gate verdicts
    expected: Expected | None = None


@dataclass(frozen=True)
class GatePolicy:
    """One version of a model's gate policy: the YAML as written, and as validated."""

    name: str
    policy_version: int
    source: str
    document: dict[str, object]
    user_id: str
    created: int

    @property
    def protected_aliases(self) -> tuple[str, ...]:
        aliases = self.document.get("protected_aliases")
        return tuple(str(a) for a in aliases) if isinstance(aliases, list) else ()


@dataclass(frozen=True)
class Verdict:
    """One rule's answer: what it asked, what it found, and whether that passes."""

    rule: str
    expected: str
    actual: str
    passed: bool

    def __str__(self) -> str:
        return (f"{self.rule}: expected {self.expected}, actual {self.actual} "
                f"({'pass' if self.passed else 'FAIL'})")

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "expected": self.expected, "actual": self.actual,
                "passed": self.passed}


@dataclass(frozen=True)
class Approval:
    user_id: str
    comment: str
    timestamp: int


@dataclass(frozen=True)
class PromotionRequest:
    """A promotion asked for and waiting for approvers (or decided)."""

    id: int
    name: str
    version: int
    target: str  # a stage ("Production"), or "@alias"
    archive_existing: bool
    from_stage: str  # the version's stage when the request was opened
    state: str  # open, approved, rejected
    requested_by: str
    reason: str
    created: int
    updated: int
    decided_by: str | None = None
    decision_comment: str = ""
    approvals: tuple[Approval, ...] = ()

    @property
    def alias(self) -> str | None:
        return self.target[1:] if self.target.startswith("@") else None


@dataclass(frozen=True)
class Decision:
    """An approver's word on request `request_id`. With `approve`, once the request has
    `required` approvals, `change` (a stage change or an alias move) is applied in the
    same transaction; `expected` is the state the gates were evaluated on."""

    request_id: int
    user_id: str
    approve: bool
    comment: str = ""
    required: int = 1
    change: StageChange | AliasMove | None = None
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DecisionResult:
    request: PromotionRequest  # as it is after the decision
    applied: StageChangeResult | AuditEntry | None  # the transition, once approved


@dataclass(frozen=True)
class Webhook:
    """An endpoint told of registry events: of one model, or of every model (`model`
    None). The signing secret stays in the environment variable `secret_env`."""

    id: int
    model: str | None
    url: str
    events: tuple[str, ...]
    secret_env: str
    created_by: str
    created: int


@dataclass(frozen=True)
class WebhookDelivery:
    """One event queued for one webhook: its exact body, and how sending it went.
    `url` and `secret_env` are the hook's, read with the delivery."""

    id: int
    webhook_id: int
    event: str
    payload: str  # the JSON body, byte for byte what is sent and signed
    state: str  # pending, sending, delivered, failed
    attempts: int  # attempts made so far
    next_attempt: int  # pending: not before; sending: when the lease ends
    last_status: int | None
    last_error: str
    created: int
    delivered: int | None
    url: str = ""
    secret_env: str = ""
