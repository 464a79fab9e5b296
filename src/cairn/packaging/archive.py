"""The package file: an OCI image layout in a tar, written in one canonical form.

A package holds exactly these members, in this order (docs/formats.md, "Model packages"):

    oci-layout                {"imageLayoutVersion":"1.0.0"}
    index.json                the OCI index naming the one OCI manifest
    blobs/  blobs/sha256/     directories
    blobs/sha256/<hex>        every blob, sorted by digest, once each

Every header is POSIX ustar (GNU's, with its base-256 size, for a file of 8 GiB or
more) with fixed fields (mode 0644 for files and 0755 for the directories, uid/gid 0,
no user or group names, mtime 0, no PAX or GNU extension records);
data is padded with zeros to 512 bytes; the archive ends with two zero blocks padded to
tar's 10240-byte record. Since the form is fixed, a reader rebuilds every header from
the name and size it parsed and compares bytes: any byte flipped anywhere — a header, a
padding, the trailer, a blob — is caught, and `scan` says where.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cairn.errors import IntegrityError

BLOCK = 512
RECORD = tarfile.RECORDSIZE  # 20 blocks: what tar pads the end of an archive to
CHUNK = 1 << 20
USTAR_MAX_SIZE = 8 ** 11  # bytes: ustar's size field holds 11 octal digits
DOCUMENT_LIMIT = 16 << 20  # index.json, the OCI manifest and config, MANIFEST.json, …
OCI_LAYOUT = "oci-layout"
INDEX = "index.json"
BLOBS_DIRS = ("blobs/", "blobs/sha256/")
BLOB_PREFIX = "blobs/sha256/"
LAYOUT_BYTES = b'{"imageLayoutVersion":"1.0.0"}'
_BLOB_NAME = re.compile(r"blobs/sha256/([0-9a-f]{64})\Z")

# A blob is given as its bytes, or as a file to stream from (large weights).
BlobSource = bytes | Path


def header(name: str, size: int, is_dir: bool = False) -> bytes:
    """The one header a member `name` of `size` bytes may have: ustar, or for a file of
    8 GiB or more (past ustar's 11 octal digits) GNU's, whose size field is base-256."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = 0 if is_dir else size
    info.mode = 0o755 if is_dir else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.size < USTAR_MAX_SIZE:
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")


def padding(size: int) -> int:
    return -size % BLOCK


def trailer(offset: int) -> int:
    """How many zero bytes end an archive whose members end at `offset`."""
    end = offset + 2 * BLOCK
    return 2 * BLOCK + (-end % RECORD)


def write(out: BinaryIO, index: bytes, blobs: dict[str, BlobSource]) -> int:
    """Write the canonical archive of `index` and `blobs` (hex digest → source) to
    `out`; the number of bytes written."""
    written = 0

    def member(name: str, size: int, chunks: Iterable[bytes], is_dir: bool = False) -> None:
        nonlocal written
        out.write(header(name, size, is_dir))
        for chunk in chunks:
            out.write(chunk)
        out.write(b"\0" * padding(size))
        written += BLOCK + size + padding(size)

    member(OCI_LAYOUT, len(LAYOUT_BYTES), [LAYOUT_BYTES])
    member(INDEX, len(index), [index])
    for name in BLOBS_DIRS:
        member(name, 0, [], is_dir=True)
    for hexdigest in sorted(blobs):
        source = blobs[hexdigest]
        if isinstance(source, bytes):
            member(BLOB_PREFIX + hexdigest, len(source), [source])
        else:
            size = source.stat().st_size
            member(BLOB_PREFIX + hexdigest, size, _file_chunks(source, size, hexdigest))
    tail = trailer(written)
    out.write(b"\0" * tail)
    return written + tail


def _file_chunks(path: Path, size: int, hexdigest: str) -> Iterator[bytes]:
    """The `size` bytes of `path`, which must still be the bytes named `hexdigest`: a
    file changed between hashing and writing is refused, never packaged under the old
    digest."""
    hasher = hashlib.sha256()
    left = size
    with open(path, "rb") as f:
        while left and (chunk := f.read(min(CHUNK, left))):
            hasher.update(chunk)
            left -= len(chunk)
            yield chunk
        grew = bool(f.read(1))
    if left or grew or hasher.hexdigest() != hexdigest:
        raise IntegrityError(f"{path} changed while the package was being built; build it "
                             "again once nothing writes to it")


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of its data
    size: int
    sha256: str  # of its data, as read


@dataclass(frozen=True)
class Scan:
    """What an archive holds, every header and padding checked; data hashed, not yet
    compared with anything (the caller knows which digest each blob must have)."""

    path: Path
    members: list[Member]

    def get(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def blobs(self) -> dict[str, Member]:
        """hex digest (from the member's name) → member."""
        return {m.name[len(BLOB_PREFIX):]: m for m in self.members
                if _BLOB_NAME.match(m.name)}

    # Reads after the scan hash again what they read: the file may have been replaced
    # since (verify, then extract other bytes), and only the scanned bytes were checked.

    def read(self, member: Member) -> bytes:
        """A small member's bytes (the package's JSON and YAML documents), whole."""
        if member.size > DOCUMENT_LIMIT:
            raise IntegrityError(f"{self.path}: {member.name} is {member.size} bytes, more "
                                 f"than a package document may be ({DOCUMENT_LIMIT})")
        with open(self.path, "rb") as f:
            f.seek(member.offset)
            data = f.read(member.size)
        if len(data) != member.size or hashlib.sha256(data).hexdigest() != member.sha256:
            raise self._changed(member)
        return data

    def copy(self, member: Member, out: BinaryIO) -> None:
        hasher = hashlib.sha256()
        with open(self.path, "rb") as f:
            f.seek(member.offset)
            left = member.size
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise self._changed(member)
                hasher.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        if hasher.hexdigest() != member.sha256:
            raise self._changed(member)

    def _changed(self, member: Member) -> IntegrityError:
        return IntegrityError(f"{self.path}: {member.name} changed after the package was "
                              "verified (the file was replaced or is being written); nothing "
                              "of it was used")


def scan(path: Path) -> Scan:
    """Read every member of the archive at `path` without extracting it; IntegrityError
    (saying what and where) unless every header, padding and the trailer are canonical
    and the members are the format's, in its order."""
    members: list[Member] = []
    where = str(path)
    with open(path, "rb") as f:
        offset = 0
        while True:
            block = f.read(BLOCK)
            if len(block) < BLOCK:
                raise IntegrityError(f"{where}: the archive ends at byte {offset} without "
                                     "tar's end-of-archive blocks (truncated)")
            if block == b"\0" * BLOCK:
                _check_trailer(f, where, offset)
                break
            name, size, is_dir = _parse_header(block, where, offset)
            _check_name(members, name, is_dir, where, offset)
            members.append(_read_data(f, name, size, offset + BLOCK, where))
            offset += BLOCK + size + padding(size)
    _check_complete(members, where)
    return Scan(path, members)


def _parse_header(block: bytes, where: str, offset: int) -> tuple[str, int, bool]:
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except (tarfile.HeaderError, UnicodeDecodeError) as e:
        raise IntegrityError(f"{where}: the tar header at byte {offset} is damaged "
                             f"({e})") from None
    if info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE):
        raise IntegrityError(f"{where}: the tar member {info.name!r} at byte {offset} is "
                             "not a plain file or directory")
    name = info.name + "/" if info.isdir() and not info.name.endswith("/") else info.name
    if block != header(name, info.size, info.isdir()):
        raise IntegrityError(f"{where}: the tar header of {name!r} at byte {offset} is not "
                             "in the canonical form (a field was changed)")
    return name, info.size, info.isdir()


def _check_name(before: list[Member], name: str, is_dir: bool, where: str,
                offset: int) -> None:
    fixed = [OCI_LAYOUT, INDEX, *BLOBS_DIRS]
    position = len(before)
    if position < len(fixed):
        expected = fixed[position]
        if name != expected:
            raise IntegrityError(f"{where}: member {name!r} at byte {offset} is not part of "
                                 f"the package format here (expected {expected!r})")
        return
    if is_dir or not _BLOB_NAME.match(name):
        raise IntegrityError(f"{where}: member {name!r} at byte {offset} is not in the "
                             "manifest (a package holds only blobs/sha256/<digest> files)")
    if position > len(fixed) and name <= before[-1].name:
        raise IntegrityError(f"{where}: member {name!r} at byte {offset} is out of order or "
                             "repeated (blobs are sorted by digest, each once)")


def _read_data(f: BinaryIO, name: str, size: int, offset: int, where: str) -> Member:
    hasher = hashlib.sha256()
    left = size
    while left:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise IntegrityError(f"{where}: {name} is truncated")
        hasher.update(chunk)
        left -= len(chunk)
    pad = f.read(padding(size))
    if pad != b"\0" * padding(size):
        raise IntegrityError(f"{where}: the padding after {name!r} (byte {offset + size}) "
                             "is not zeros")
    return Member(name, offset, size, hasher.hexdigest())


def _check_trailer(f: BinaryIO, where: str, offset: int) -> None:
    expected = trailer(offset) - BLOCK
    rest = f.read(expected + 1)  # one byte more tells data after the trailer
    if len(rest) != expected or rest.count(0) != len(rest):
        raise IntegrityError(f"{where}: the end of the archive (from byte {offset}) is not "
                             f"{trailer(offset)} zero bytes: extra or changed data after the "
                             "last member")


def _check_complete(members: list[Member], where: str) -> None:
    if len(members) < len(BLOBS_DIRS) + 2:
        raise IntegrityError(f"{where}: not a Cairn package (no OCI layout, index and blobs)")
    layout = members[0]
    if layout.sha256 != hashlib.sha256(LAYOUT_BYTES).hexdigest():
        raise IntegrityError(f"{where}: {OCI_LAYOUT} is not {LAYOUT_BYTES.decode()}")
