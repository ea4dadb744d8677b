"""The Digest value type: valid by construction, computed the one way, shown as docker shows it."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from emustore.digest import Digest, Hasher, hex_of, is_digest, is_hex64, short_id

HEX = hashlib.sha256(b"emustore").hexdigest()


@pytest.mark.parametrize(
    "text",
    ["", "sha256:", "sha256:" + HEX[:-1], "sha256:" + HEX.upper(), "sha512:" + HEX, HEX, "sha256:" + HEX + "\n",
     "sha256:../" + HEX[3:]],
)
def test_anything_but_sha256_and_64_lowercase_hex_is_refused(text: str) -> None:
    assert not is_digest(text)
    assert Digest.parse(text) is None
    with pytest.raises(ValueError):
        Digest(text)


def test_non_strings_are_not_digests() -> None:
    assert not is_digest(None) and not is_hex64(42) and Digest.parse(b"sha256:" + HEX.encode()) is None


def test_a_digest_is_the_text_it_was_made_from() -> None:
    digest = Digest("sha256:" + HEX)
    assert digest == "sha256:" + HEX and isinstance(digest, str)
    assert digest.hex == HEX == hex_of(digest)
    assert digest.short == HEX[:12] == short_id(digest) == short_id(HEX)
    assert Digest.from_hex(HEX) == digest
    assert {digest: 1}["sha256:" + HEX] == 1
    assert pickle.loads(pickle.dumps(digest)) == digest and type(pickle.loads(pickle.dumps(digest))) is Digest


def test_computed_digests_match_hashlib() -> None:
    data = b"a" * 100_000
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert Digest.of_bytes(data) == expected
    assert Digest.of_chunks(data[i : i + 4096] for i in range(0, len(data), 4096)) == expected
    hasher = Hasher()
    hasher.update(data[:10])
    hasher.update(memoryview(data)[10:])
    assert hasher.digest() == expected
    assert Digest.of_chunks([]) == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_hex64_is_bare_lowercase_hex() -> None:
    assert is_hex64(HEX) and not is_hex64(HEX.upper()) and not is_hex64("sha256:" + HEX) and not is_hex64(HEX + "0")
