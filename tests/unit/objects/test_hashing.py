from pathlib import Path

from cairn.objects import hashing

EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_digest_is_blake3_hex() -> None:
    assert hashing.hash_bytes(b"") == EMPTY
    assert hashing.is_digest(EMPTY)
    assert not hashing.is_digest(EMPTY.upper())
    assert not hashing.is_digest("../" + EMPTY[3:])


def test_large_files_hash_the_same_through_mmap(tmp_path: Path) -> None:
    data = bytes(range(256)) * (hashing.MMAP_THRESHOLD // 256 + 3)
    big = tmp_path / "big"
    big.write_bytes(data)
    assert hashing.hash_file(big) == hashing.hash_bytes(data)
