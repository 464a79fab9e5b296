import subprocess
import sys

import cairn

HEAVY = ("rich", "fsspec", "s3fs", "sqlalchemy", "sklearn", "botocore")


def test_public_names_are_listed_and_sorted() -> None:
    assert cairn.__all__ == sorted(cairn.__all__)
    for name in cairn.__all__:
        assert hasattr(cairn, name)


def test_cli_start_up_imports_nothing_heavy() -> None:
    code = ("import sys; import cairn.cli.main; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""
