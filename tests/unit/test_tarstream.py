import io
import tarfile

import pytest

from emustore.errors import LayerError
from emustore.layers.tarstream import (
    ByteStream,
    TarReader,
    parse_header,
    parse_numeric,
    parse_pax,
    parse_pax_time,
)


def _reader(data: bytes, chunk: int = 700) -> TarReader:
    chunks = iter([data[i : i + chunk] for i in range(0, len(data), chunk)])
    return TarReader(ByteStream(chunks, lambda c: None))


def _members(data: bytes) -> list[tuple[object, bytes, bytes]]:
    reader = _reader(data)
    out = []
    while True:
        hdr = reader.next()
        raw = reader.raw
        if hdr is None:
            out.append((None, raw, b""))
            return out
        content = b"".join(bytes(p) for p in reader.data())
        out.append((hdr, raw, content))


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def test_raw_segments_reassemble_the_archive() -> None:
    long_name = "d/" + "x" * 150
    info = tarfile.TarInfo(long_name)
    info.size = 3
    info.mtime = 1700000011.5
    info.pax_headers = {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.user.empty": ""}
    d = tarfile.TarInfo("d/")
    d.type = tarfile.DIRTYPE
    data = _tar([(d, None), (info, b"abc")]) + bytes(9216)
    members = _members(data)
    hdr = members[1][0]
    assert hdr.name == long_name.encode()
    assert hdr.mtime_ns == 1700000011_500000000
    assert hdr.xattrs == {b"user.k": b"v"}  # empty values are dropped, as in Go
    rebuilt = b"".join(raw + content for _, raw, content in members)
    assert data.startswith(rebuilt)
    # the end raw holds the padding and the two zero blocks only
    assert members[-1][1].endswith(bytes(1024))


def test_gnu_long_names_and_base256_ids() -> None:
    info = tarfile.TarInfo("l/" + "y" * 120)
    info.size = 1
    info.uid = info.gid = 3000000  # too large for octal in 8 bytes: base-256
    info.linkname = ""
    data = _tar([(info, b"z")], fmt=tarfile.GNU_FORMAT)
    hdr = _members(data)[0][0]
    assert hdr.name == ("l/" + "y" * 120).encode()
    assert hdr.uid == 3000000 and hdr.gid == 3000000


def test_header_only_types_have_no_content() -> None:
    d = tarfile.TarInfo("dir/")
    d.type = tarfile.DIRTYPE
    link = tarfile.TarInfo("dir/h")
    link.type = tarfile.LNKTYPE
    link.linkname = "dir/f"
    members = _members(_tar([(d, None), (link, None)], fmt=tarfile.USTAR_FORMAT))
    assert [m[0].data_size for m in members[:-1]] == [0, 0]


def test_corrupt_header_is_refused() -> None:
    info = tarfile.TarInfo("f")
    data = bytearray(_tar([(info, b"")], fmt=tarfile.USTAR_FORMAT))
    data[0] ^= 0x01
    with pytest.raises(LayerError, match="checksum"):
        _reader(bytes(data)).next()


def test_truncated_header_is_refused() -> None:
    info = tarfile.TarInfo("f")
    data = _tar([(info, b"")], fmt=tarfile.USTAR_FORMAT)[:300]
    with pytest.raises(LayerError):
        _reader(data).next()


def test_zero_block_then_data_is_refused() -> None:
    info = tarfile.TarInfo("f")
    header = _tar([(info, b"")], fmt=tarfile.USTAR_FORMAT)[:512]
    with pytest.raises(LayerError):
        r = _reader(bytes(512) + header)
        r.next()


def test_one_zero_block_or_plain_eof_ends_the_archive() -> None:
    info = tarfile.TarInfo("f")
    header = _tar([(info, b"")], fmt=tarfile.USTAR_FORMAT)[:512]
    for tail in (b"", bytes(512)):
        r = _reader(header + tail)
        assert r.next() is not None
        assert r.next() is None
        assert r.raw == tail


def test_numeric_fields() -> None:
    assert parse_numeric(b"0000644\0") == 0o644
    assert parse_numeric(b"  \0\0") == 0
    assert parse_numeric(bytes([0x80, 0, 0, 0, 0, 0x2D, 0xC6, 0xC0])) == 3000000
    assert parse_numeric(bytes([0xFF] * 8)) == -1
    with pytest.raises(LayerError):
        parse_numeric(b"0_644\0\0\0")
    with pytest.raises(LayerError):
        parse_numeric(b"0o644\0\0\0")


def test_pax_records_and_times() -> None:
    assert parse_pax(b"11 path=ab\n") == {b"path": b"ab"}
    with pytest.raises(LayerError):
        parse_pax(b"12 path=ab\n")
    with pytest.raises(LayerError):
        parse_pax(b"9 =abcd\n")
    assert parse_pax_time(b"1700000011.123456789123") == 1700000011_123456789
    assert parse_pax_time(b"-1.5") == -1_500000000
    assert parse_pax_time(b"7") == 7_000000000


def test_parse_header_prefix_joins_name() -> None:
    info = tarfile.TarInfo("p" * 120 + "/" + "n" * 50)
    data = _tar([(info, b"")], fmt=tarfile.USTAR_FORMAT)
    assert parse_header(data[:512]).name == info.name.encode()
