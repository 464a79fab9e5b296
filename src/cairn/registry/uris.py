"""Model URIs: parsing ``models:/…`` and ``runs:/…`` and resolving them to a digest.

    models:/NAME/VERSION      a version number
    models:/NAME/STAGE        the newest version in a stage (None, Staging, Production,
                              Archived; any case, as MLflow accepts)
    models:/NAME/latest       the newest version
    models:/NAME@ALIAS        the version an alias points at
    runs:/RUN_ID/PATH         an artifact logged by a run

A malformed URI is a UserError showing these forms; a name, version, stage or alias
that does not exist is a NotFoundError naming what does.
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn.errors import NotFoundError, UserError
from cairn.registry.stages import STAGES, canonical
from cairn.store.base import MetadataStore
from cairn.store.entities import Artifact, ModelVersion, RegisteredModel
from cairn.tracking.artifacts import clean_artifact_path, find_artifact

MODELS = "models:/"
RUNS = "runs:/"
FORMS = ("models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME/latest, models:/NAME@ALIAS "
         "or runs:/RUN_ID/PATH")


def malformed(uri: str, why: str) -> UserError:
    return UserError(f"malformed model URI {uri!r}: {why}; expected {FORMS}")


@dataclass(frozen=True)
class ModelsUri:
    name: str
    version: int | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        suffix = self.version if self.version is not None else self.stage or "latest"
        return f"models:/{self.name}/{suffix}"


@dataclass(frozen=True)
class RunsUri:
    run_id: str
    path: str

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


def is_model_uri(value: str) -> bool:
    return value.startswith((MODELS, RUNS))


def parse(uri: str) -> ModelsUri | RunsUri:
    if uri.startswith(RUNS):
        return parse_runs(uri)
    if uri.startswith(MODELS):
        return parse_models(uri)
    raise malformed(uri, "it starts with neither models:/ nor runs:/")


def parse_runs(uri: str) -> RunsUri:
    run_id, _, path = uri[len(RUNS):].lstrip("/").partition("/")
    if not run_id or not path.strip("/"):
        raise malformed(uri, "a runs:/ URI names a run id and an artifact path")
    return RunsUri(run_id, clean_artifact_path(path))


def parse_models(uri: str) -> ModelsUri:
    body = uri[len(MODELS):].lstrip("/")
    if "@" in body.rsplit("/", 1)[-1]:
        name, _, alias = body.rpartition("@")
        if not name or not alias or "/" in alias:
            raise malformed(uri, "an alias URI is models:/NAME@ALIAS")
        return ModelsUri(name, alias=alias)
    name, _, suffix = body.rpartition("/")
    if not name or not suffix:
        raise malformed(uri, "a version, stage, 'latest' or @alias must follow the name")
    if suffix.isdigit():
        return ModelsUri(name, version=int(suffix))
    if suffix.lower() == "latest":
        return ModelsUri(name, latest=True)
    try:
        return ModelsUri(name, stage=canonical(suffix))
    except UserError:
        raise malformed(uri, f"{suffix!r} is not a version number, a stage "
                             f"({', '.join(STAGES)}) or 'latest'") from None


# -- resolving -------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """What a URI names: always a digest; a version and run when there are ones."""

    uri: str
    digest: str
    is_dir: bool
    version: ModelVersion | None = None
    run_id: str | None = None
    artifact_path: str | None = None


def resolve(store: MetadataStore, uri: str) -> Resolved:
    parsed = parse(uri)
    if isinstance(parsed, RunsUri):
        artifact: Artifact = find_artifact(store, parsed.run_id, parsed.path)
        return Resolved(uri, artifact.digest, artifact.is_dir, None, parsed.run_id,
                        artifact.path)
    mv = resolve_version(store, parsed)
    if not mv.digest:
        raise NotFoundError(f"{uri}: version {mv.version} of {mv.name!r} records no digest")
    return Resolved(uri, mv.digest, True, mv, mv.run_id, None)


def resolve_version(store: MetadataStore, ref: ModelsUri) -> ModelVersion:
    model = get_model(store, ref.name)
    if ref.alias is not None:
        if ref.alias not in model.aliases:
            raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r}; "
                                f"its aliases: {_aliases(model.aliases)}")
        return get_version(store, ref.name, model.aliases[ref.alias])
    if ref.version is not None:
        return get_version(store, ref.name, ref.version)
    stages = None if ref.latest else [ref.stage or "None"]
    found = store.get_latest_versions(ref.name, stages)
    if not found:
        if ref.latest:
            raise NotFoundError(f"model {ref.name!r} has no versions; register one with "
                                f"`cairn models register`")
        held = ", ".join(f"{mv.current_stage} (v{mv.version})"
                         for mv in store.get_latest_versions(ref.name, STAGES)) or "none"
        raise NotFoundError(f"no version of model {ref.name!r} is in stage {ref.stage}; "
                            f"stages held: {held}")
    return max(found, key=lambda mv: mv.version)


def get_model(store: MetadataStore, name: str) -> RegisteredModel:
    try:
        return store.get_registered_model(name)
    except NotFoundError:
        names = [m.name for m in store.search_registered_models(max_results=21)]
        listing = ", ".join(names[:20]) + (", …" if len(names) > 20 else "") or "none yet"
        raise NotFoundError(f"no registered model {name!r}; registered models: {listing}"
                            ) from None


def get_version(store: MetadataStore, name: str, version: int) -> ModelVersion:
    try:
        return store.get_model_version(name, version)
    except NotFoundError:
        get_model(store, name)  # the model itself missing says so
        versions = sorted(mv.version for mv in
                          store.search_model_versions(f"name = '{quote_string(name)}'"))
        raise NotFoundError(f"model {name!r} has no version {version}; its versions: "
                            f"{_ranges(versions)}") from None


def quote_string(text: str) -> str:
    return text.replace("'", "''")  # the filter syntax doubles quotes


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}..{numbers[-1]}"
    return ", ".join(map(str, numbers))


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a} → v{v}" for a, v in sorted(aliases.items())) or "none"
