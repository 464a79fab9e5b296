import subprocess
import sys

import cairn

HEAVY = ("rich", "fsspec", "s3fs", "sqlalchemy", "sklearn", "botocore")


# The public Python API: adding a name is a decision, removing one breaks users.
PUBLIC = [
    "ApprovalPending", "CairnError", "Client", "ConflictError", "GateRefused", "MlflowClient",
    "NotFoundError", "PermissionDenied", "UserError",
    "__version__", "active_run", "api", "delete_tag", "end_run", "entities", "flush", "gates",
    "get_artifact_uri", "get_run", "get_tracking_uri", "last_active_run", "load_model",
    "log_artifact", "log_artifacts", "log_dict", "log_metric", "log_metrics", "log_param",
    "log_params", "log_text", "onnx", "pyfunc", "register_model", "search_runs",
    "set_experiment", "set_tag", "set_tags", "set_tracking_uri", "sklearn", "start_run",
]


def test_public_names_are_exactly_these_and_sorted() -> None:
    assert cairn.__all__ == PUBLIC == sorted(PUBLIC)
    for name in cairn.__all__:
        assert hasattr(cairn, name)


def test_the_errors_a_caller_catches_are_the_ones_cairn_raises() -> None:
    from cairn import errors

    assert cairn.CairnError is errors.CairnError
    assert issubclass(cairn.NotFoundError, KeyError)
    for name in ("ConflictError", "NotFoundError", "UserError"):
        assert getattr(cairn, name) is getattr(errors, name)
        assert issubclass(getattr(cairn, name), cairn.CairnError)


def test_import_cairn_and_its_errors_imports_nothing_heavy() -> None:
    code = ("import sys; import cairn; cairn.CairnError; "
            f"print(','.join(m for m in {(*HEAVY, 'yaml')!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""


def test_cli_start_up_imports_nothing_heavy() -> None:
    code = ("import sys; import cairn.cli.main; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""
