"""Loading and extracting a package: no project, registry or store is needed.

`load_package` verifies the whole package every time (it is one file anyone could have
changed), extracts it once per package digest into a read-only directory under the
package cache (``$CAIRN_PACKAGE_CACHE``, else ``$XDG_CACHE_HOME/cairn/packages``, else
``~/.cache/cairn/packages``), re-extracted when anything there changed, and loads the
model directory inside with the flavors' loader.

Trust: a package vouches only for its own consistency, not for who made it, so it is
never `verified` in the store's sense by itself: its pickles and its own code load only
with `trusted=True`. A package whose signature checked out against a `public_key` the
caller gave is `verified`: its own code (a pyfunc class) may run; a pickle still needs
`trusted=True` (docs/formats.md, "Model packages").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cairn import paths
from cairn.errors import IntegrityError, UserError
from cairn.packaging.manifest import MANIFEST_FILE, MODEL_DIR, Manifest
from cairn.packaging.verify import Package, open_package

if TYPE_CHECKING:
    from cairn.flavors.base import LoadedModel

PACKAGE_SCHEME = "package:"  # cairn.load_model("package:dist/x.cairnpkg")


def load_package(path: str | os.PathLike[str], trusted: bool = False,
                 public_key: str | os.PathLike[str] | None = None,
                 digest: str | None = None) -> tuple[LoadedModel, Manifest]:
    """The model in the package at `path` and the package's manifest; its
    `.metadata.lineage` is the manifest's lineage (plus `package_digest`). With `digest`,
    the package must be that one (a worker reopening what its parent verified)."""
    from cairn.flavors.base import load

    package = open_package(path, public_key)
    if digest is not None and package.manifest.digest != digest:
        raise IntegrityError(f"{path} is now package {package.manifest.digest}, not the "
                             f"{digest} that was verified when serving started; restart to "
                             "serve the new one")
    root = extracted(package)
    model = load(root / MODEL_DIR, trusted=trusted, verified=public_key is not None,
                 source=f"package:{path}")
    lineage = {**package.manifest.lineage, "package_digest": package.manifest.digest}
    model.metadata = model.metadata.with_lineage(lineage)
    return model, package.manifest


def cache_dir() -> Path:
    explicit = os.environ.get("CAIRN_PACKAGE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cairn" / "packages"


def extracted(package: Package) -> Path:
    """The read-only directory of a verified package's files (built once per digest)."""
    from cairn.registry.loading import read_only_dir

    return read_only_dir(cache_dir(), package.manifest.digest.replace(":", "-"),
                         lambda built: write_files(package, built))


def extract_package(path: str | os.PathLike[str], out: str | os.PathLike[str],
                    public_key: str | os.PathLike[str] | None = None) -> Manifest:
    """Verify, then write the package's files (and MANIFEST.json) into the new or empty
    directory `out`."""
    package = open_package(path, public_key)
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not an empty directory; extract "
                        "into a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:  # written whole beside the target, then renamed: a failure leaves no half of it
        write_files(package, work / "files")
        if target.exists():
            target.rmdir()
        os.rename(work / "files", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return package.manifest


def write_files(package: Package, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_FILE).write_bytes(package.document)
    for name, member in package.members.items():
        rel = paths.clean(name, str(package.path), "packaged file")  # verify checked too
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as f:
            package.scan.copy(member, f)
