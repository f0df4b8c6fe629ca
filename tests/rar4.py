"""Writes stored (uncompressed) RAR 4 archives, since no RAR packer exists here.

Format per RARLAB's technote for RAR 1.5-4.x: a marker block, a main archive header, one file header plus
data per member, and an end-of-archive block. Each header starts with the low 16 bits of the CRC32 of the
header bytes that follow the CRC field.
"""

from __future__ import annotations

import stat
import struct
import zlib
from pathlib import Path

MARKER = b"Rar!\x1a\x07\x00"
HOST_UNIX = 3
METHOD_STORE = 0x30
FLAG_LONG_BLOCK = 0x8000
DOS_TIME_2020 = (2020 - 1980) << 25 | 1 << 21 | 1 << 16  # 2020-01-01 00:00


def _block(head_type: int, flags: int, body: bytes) -> bytes:
    size = 7 + len(body)
    head = struct.pack("<BHH", head_type, flags, size) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head


def write_stored_rar(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    """Writes `members` (name -> content) and optional `symlinks` (name -> target) as a RAR 4 archive."""
    out = bytearray(MARKER)
    out += _block(0x73, 0, b"\x00" * 6)  # main header: two reserved fields
    entries = [(name, data, stat.S_IFREG | 0o644) for name, data in members.items()]
    entries += [(name, target.encode(), stat.S_IFLNK | 0o777) for name, target in (symlinks or {}).items()]
    for name, data, mode in entries:
        encoded = name.encode()
        body = (
            struct.pack(
                "<IIBIIBBHI",
                len(data),
                len(data),
                HOST_UNIX,
                zlib.crc32(data),
                DOS_TIME_2020,
                20,
                METHOD_STORE,
                len(encoded),
                mode,
            )
            + encoded
        )
        out += _block(0x74, FLAG_LONG_BLOCK, body) + data
    out += _block(0x7B, 0x4000, b"")
    Path(path).write_bytes(bytes(out))
    return Path(path)
