#!/usr/bin/env python3
"""Decode a ZMS partition image (Zephyr Memory Storage, 32-bit IDs, data CRC on).

Reads a raw image, such as the bonds partition or `bonds.zms` file copied off a board
with mpremote, and prints its sectors, their state and the live records. This is a
second, independent reader of the format documented at the top of aioble_pm/zms.py
(it shares no code with it), so the two can check each other.

Command line:
    python tools/zms_decode.py IMAGE [--sector-size N] [--write-block N]
                                     [--entries] [--json]

As a module:
    from zms_decode import decode, report
    img = decode(open("bonds.zms", "rb").read())
    img.records        # {id: value bytes} of the live records
    print(report(img))

Errors: decode() raises ValueError, and the command line exits 2, only when no
geometry is given and none can be found (no sector header), or the image is not 2 or
more whole sectors. Any other image, however damaged (torn programs, torn erases,
garbage sectors: tests/test_zms_decode.py feeds it the fault model's images), decodes:
unreadable ATEs are listed as INVALID with the reason, damaged values under CORRUPT.
Exit status 1 when some record is CORRUPT, else 0.
"""
import argparse
import json
import sys
import zlib
from dataclasses import dataclass, field

ATE_BYTES = 16
HEAD_ID = 0xFFFFFFFF
MAGIC = 0x42
VERSION = 1
INLINE_MAX = 8


def crc8(data, crc=0xFF):
    """CRC-8 of ZMS ATEs: polynomial 0x07, MSB first, no final xor."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _le(raw, start, size):
    return int.from_bytes(raw[start:start + size], "little")


@dataclass
class Entry:
    """One ATE slot. kind: empty, close, gc_done, header, write, delete, invalid, erased."""
    slot: int            # offset inside the sector
    raw: bytes
    kind: str
    valid: bool
    id: int = 0
    length: int = 0
    cycle: int = 0
    offset: int = 0      # data offset (len > 8) or header payload
    data_crc: int = 0
    value: bytes = None  # the value, for valid writes
    note: str = ""


@dataclass
class Sector:
    index: int
    state: str = "no header"   # open, closed, spare, erased, no header, unused
    cycle: int = 0
    version: int = None
    magic: int = None
    ate_format: int = None
    close_offset: int = None
    data_end: int = 0
    entries: list = field(default_factory=list)


@dataclass
class Image:
    sector_size: int
    ate_size: int
    write_block: int
    sectors: list
    open_sector: int = None
    records: dict = field(default_factory=dict)   # live id -> value
    deleted: list = field(default_factory=list)   # ids whose newest entry is a delete
    corrupt: dict = field(default_factory=dict)   # id -> reason (newest entry unreadable)
    notes: list = field(default_factory=list)


class Layout:
    """Geometry helpers for one image."""

    def __init__(self, image, sector_size, write_block):
        self.image = image
        self.size = sector_size
        self.wb = write_block
        self.ate = max(ATE_BYTES, write_block)
        self.count = len(image) // sector_size
        self.max_len = min(0xFFFF, sector_size - 5 * self.ate)

    def raw(self, sector, slot):
        base = sector * self.size + slot
        return bytes(self.image[base:base + ATE_BYTES])

    def aligned(self, n):
        return -(-n // self.wb) * self.wb

    def header(self, sector):
        """Sector with its empty and close ATE decoded."""
        sec = Sector(sector)
        empty = self.raw(sector, self.size - self.ate)
        close = self.raw(sector, self.size - 2 * self.ate)
        if empty == b"\xff" * ATE_BYTES and close == b"\xff" * ATE_BYTES:
            sec.state = "erased" if self.sector_erased(sector) else "no header"
            return sec
        if crc8(empty[1:]) != empty[0] or _le(empty, 2, 2) != 0xFFFF or _le(empty, 4, 4) != HEAD_ID:
            return sec
        meta = _le(empty, 12, 4)
        sec.version, sec.magic, sec.ate_format = meta & 0xFF, (meta >> 8) & 0xFF, (meta >> 16) & 0xF
        if sec.ate_format != 0:
            sec.state = "foreign format"
            return sec
        sec.cycle = empty[1]
        sec.state = "unclosed"
        off = _le(close, 8, 4)
        if (crc8(close[1:]) == close[0] and close[1] == sec.cycle and _le(close, 2, 2) == 0
                and _le(close, 4, 4) == HEAD_ID and self.ate <= off <= self.size - 3 * self.ate
                and (self.size - off) % self.ate == 0):
            sec.state = "closed"
            sec.close_offset = off
        return sec

    def sector_erased(self, sector):
        base = sector * self.size
        return self.image[base:base + self.size] == b"\xff" * self.size

    def entry(self, sector, slot, cycle):
        """Decode and validate the ATE at `slot` of a sector whose cycle is `cycle`."""
        raw = self.raw(sector, slot)
        if raw == b"\xff" * ATE_BYTES:
            return Entry(slot, raw, "erased", False)
        ident, length = _le(raw, 4, 4), _le(raw, 2, 2)
        e = Entry(slot, raw, "invalid", False, ident, length, raw[1], _le(raw, 8, 4), _le(raw, 12, 4))
        if crc8(raw[1:]) != raw[0]:
            e.note = "crc8 mismatch"
            return e
        if raw[1] != cycle:
            e.note = "cycle %d, sector has %d" % (raw[1], cycle)
            return e
        if ident == HEAD_ID:
            e.valid = True
            e.kind = "gc_done" if length == 0 else "header"
            return e
        if length > self.max_len:
            e.note = "length %d above the largest value %d" % (length, self.max_len)
            return e
        if length > INLINE_MAX:
            if e.offset % self.wb or e.offset + length > slot:
                e.note = "data offset %#x out of place" % e.offset
                return e
            base = sector * self.size + e.offset
            e.value = bytes(self.image[base:base + length])
        else:
            if any(raw[8 + length:]):
                e.note = "inline padding not zero"
                return e
            e.value = raw[8:8 + length] if length else None
        e.valid = True
        e.kind = "write" if length else "delete"
        return e


def guess_sector_size(image, write_block=4):
    """The sector size whose sector ends hold the most valid empty ATEs (ties: larger)."""
    best, best_score = None, 0
    size = 128
    while size * 2 <= len(image):
        if len(image) % size == 0:
            lay = Layout(image, size, write_block)
            score = sum(lay.header(s).state in ("closed", "unclosed") for s in range(lay.count))
            if score and score >= best_score:
                best, best_score = size, score
        size *= 2
    if best is None:
        raise ValueError("no ZMS sector header found; give the sector size")
    return best


def decode(image, sector_size=None, write_block=4):
    """Decode a whole partition image (bytes). Returns an Image."""
    image = bytes(image)
    if sector_size is None:
        sector_size = guess_sector_size(image, write_block)
    if len(image) % sector_size or len(image) // sector_size < 2:
        raise ValueError("image of %d bytes is not 2 or more sectors of %d" % (len(image), sector_size))
    lay = Layout(image, sector_size, write_block)
    out = Image(sector_size, lay.ate, write_block, [lay.header(s) for s in range(lay.count)])
    secs = out.sectors
    n = lay.count
    for s in secs:
        if s.magic == MAGIC and s.version != VERSION:
            out.notes.append("sector %d: format version %d (this reader knows %d)" % (s.index, s.version, VERSION))

    closed = [s.state == "closed" for s in secs]
    open_ = None
    for i in range(n):
        if closed[i] and not closed[(i + 1) % n]:
            open_ = (i + 1) % n
            break
    if all(closed):
        out.notes.append("every sector is closed: no open sector")
    elif open_ is None:
        last = secs[n - 1]
        first = lay.entry(n - 1, sector_size - 3 * lay.ate, last.cycle) if last.state == "unclosed" else None
        open_ = n - 1 if first is not None and first.valid else 0
    out.open_sector = open_

    # Entries of each sector: closed ones from their close offset, the open one from its
    # newest valid ATE found by scanning down to the end of its data.
    for s in secs:
        top = sector_size - 3 * lay.ate
        if s.state == "closed":
            start = s.close_offset
        elif s.index == open_ and s.state == "unclosed":
            start, s.data_end = top + lay.ate, 0
            slot = top
            while slot >= s.data_end:  # a delete may sit right at the data end
                e = lay.entry(s.index, slot, s.cycle)
                if e.valid:
                    start = slot
                    if e.kind == "write" and e.length > INLINE_MAX:
                        s.data_end = e.offset + lay.aligned(e.length)
                slot -= lay.ate
            s.state = "open"
        else:
            if s.state == "unclosed":
                busy = any(lay.raw(s.index, x) != b"\xff" * ATE_BYTES for x in range(lay.ate, top + 1, lay.ate))
                s.state = "unused" if busy else "spare"
            continue
        s.entries = [lay.entry(s.index, x, s.cycle) for x in range(start, top + 1, lay.ate)]

    if open_ is None:
        return out
    if secs[open_].state != "open":
        out.notes.append("open sector %d has no valid header" % open_)
        return out
    nxt = secs[(open_ + 1) % n]
    if nxt.state == "closed":
        done = any(e.kind == "gc_done" for e in secs[open_].entries)
        out.notes.append("sector %d still closed after the open one: garbage collection %s"
                         % (nxt.index, "finished, erase pending" if done else "interrupted"))

    # Newest first: the open sector, then closed sectors going back around the ring.
    order = [open_]
    i = (open_ - 1) % n
    while i != open_ and secs[i].state == "closed":
        order.append(i)
        i = (i - 1) % n
    seen = set()
    for i in order:
        for e in secs[i].entries:
            if not e.valid or e.id == HEAD_ID or e.id in seen:
                continue
            seen.add(e.id)
            if e.kind == "delete":
                out.deleted.append(e.id)
            elif e.length > INLINE_MAX and zlib.crc32(e.value) != e.data_crc:
                out.corrupt[e.id] = "data CRC mismatch (stored %08x, computed %08x)" % (
                    e.data_crc, zlib.crc32(e.value))
            else:
                out.records[e.id] = e.value
    out.deleted.sort()
    return out


def _hex(value, limit=32):
    text = value[:limit].hex()
    return text + ("..." if len(value) > limit else "")


def report(img, entries=False):
    """Human-readable text for an Image."""
    lines = ["ZMS image: %d sectors x %d bytes, ATE %d bytes, write block %d, open sector %s"
             % (len(img.sectors), img.sector_size, img.ate_size, img.write_block, img.open_sector)]
    lines.append("sector  state      cycle  version  close@  valid ATEs")
    for s in img.sectors:
        kinds = {}
        for e in s.entries:
            if e.valid:
                kinds[e.kind] = kinds.get(e.kind, 0) + 1
        summary = ", ".join("%d %s" % (v, k) for k, v in sorted(kinds.items()))
        lines.append("%-7d %-10s %-6s %-8s %-7s %s" % (
            s.index, s.state, s.cycle if s.version is not None else "-",
            s.version if s.version is not None else "-",
            "%#x" % s.close_offset if s.close_offset is not None else "-", summary or "-"))
        if entries:
            for e in s.entries:
                if e.kind == "erased":
                    continue
                what = {"write": "id %#010x len %d" % (e.id, e.length), "delete": "id %#010x deleted" % e.id,
                        "gc_done": "gc_done data@%#x" % e.offset}.get(e.kind, e.kind)
                lines.append("    @%#06x %-8s %s%s" % (e.slot, "ok" if e.valid else "INVALID", what,
                                                      " (%s)" % e.note if e.note else ""))
    lines.append("live records: %d" % len(img.records))
    for ident in sorted(img.records):
        value = img.records[ident]
        lines.append("  %#010x  %3d bytes  %s" % (ident, len(value), _hex(value)))
    if img.deleted:
        lines.append("deleted: " + " ".join("%#010x" % i for i in img.deleted))
    for ident, why in sorted(img.corrupt.items()):
        lines.append("CORRUPT %#010x: %s" % (ident, why))
    for note in img.notes:
        lines.append("note: " + note)
    return "\n".join(lines)


def as_json(img):
    return {
        "sector_size": img.sector_size, "ate_size": img.ate_size, "open_sector": img.open_sector,
        "sectors": [{"index": s.index, "state": s.state, "cycle": s.cycle, "close_offset": s.close_offset,
                     "valid_ates": sum(e.valid for e in s.entries)} for s in img.sectors],
        "records": {"%#010x" % k: v.hex() for k, v in sorted(img.records.items())},
        "deleted": ["%#010x" % k for k in img.deleted],
        "corrupt": {"%#010x" % k: v for k, v in sorted(img.corrupt.items())},
        "notes": img.notes,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description="Decode a ZMS (Zephyr Memory Storage) partition image.")
    ap.add_argument("image", help="raw partition image file")
    ap.add_argument("--sector-size", type=int, help="bytes per sector (default: detect)")
    ap.add_argument("--write-block", type=int, default=4, help="flash write block in bytes (default 4)")
    ap.add_argument("--entries", action="store_true", help="list every ATE")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    with open(args.image, "rb") as f:
        data = f.read()
    try:
        img = decode(data, args.sector_size, args.write_block)
    except ValueError as e:
        print("zms_decode: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(as_json(img), indent=1) if args.json else report(img, args.entries))
    return 1 if img.corrupt else 0


if __name__ == "__main__":
    sys.exit(main())
