"""Recover a rosbag2 recording that was cut off (recorder killed, power loss). ROS-free.

A killed recorder leaves its storage file without the parts written at close: an MCAP
file without its summary and footer (and possibly a half-written last chunk), a sqlite3
database with an uncommitted last transaction, and no metadata.yaml. Every complete
message is still in the file. `repair(bag)` reads them:

- MCAP: records are read from the start; chunks are decompressed and their schema,
  channel and message records collected; a record cut by the end of the file (or a chunk
  whose data fails its length checks) ends the scan. Only whole records are kept.
- sqlite3: the database is opened (SQLite rolls the unfinished transaction back) and the
  topics and messages tables are read.

and writes them with the same topics, types, message definitions and recorded QoS into a
new, complete bag of the same storage. By default that bag replaces the damaged one in
place and the damaged folder is kept beside it as `<bag>.damaged` (nothing is deleted).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from o4a_nav.errors import BagError

MCAP_MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_FOOTER, OP_DATA_END = 0x03, 0x04, 0x05, 0x06, 0x02, 0x0F


@dataclass
class Topic:
    name: str
    msgtype: str
    msgdef: str = ""           # message definition text from the file ("" when unknown)
    encoding: str = "ros2msg"
    qos: str = ""              # offered_qos_profiles as recorded (YAML text)
    serialization: str = "cdr"


@dataclass
class Recovered:
    storage: str
    topics: dict = field(default_factory=dict)     # id -> Topic
    messages: list = field(default_factory=list)   # (topic id, timestamp ns, bytes)
    files: list = field(default_factory=list)
    cut_bytes: int = 0                             # bytes at the end that held no complete record


class _Buf:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise EOFError
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        return self.take(self.u32()).decode("utf-8")

    def left(self) -> int:
        return len(self.data) - self.pos


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    """The chunk codecs rosbags reads ('' , lz4, zstd)."""
    from rosbags.rosbag2.storage_mcap import DECOMPRESSORS

    if compression not in DECOMPRESSORS:
        raise ValueError(f"unknown chunk compression {compression!r}")
    return DECOMPRESSORS[compression](data, size)


def _records(buf: _Buf, rec: Recovered, schemas: dict, top_level: bool) -> bool:
    """Read records until the end of `buf`; False when the data ends inside a record."""
    while buf.left():
        start = buf.pos
        try:
            op = buf.take(1)[0]
            length = buf.u64()
            body = _Buf(buf.take(length))
        except EOFError:
            if top_level:
                rec.cut_bytes = len(buf.data) - start
            return False
        if op in (OP_FOOTER, OP_DATA_END) and top_level:
            return True
        try:
            if op == OP_SCHEMA:
                sid = body.u16()
                name, encoding = body.string(), body.string()
                schemas[sid] = (name, encoding, body.take(body.u32()).decode("utf-8"))
            elif op == OP_CHANNEL:
                cid, sid = body.u16(), body.u16()
                topic, encoding = body.string(), body.string()
                meta = _Buf(body.take(body.u32()))
                qos = ""
                while meta.left():
                    key, value = meta.string(), meta.string()
                    if key == "offered_qos_profiles":
                        qos = value
                name, schema_enc, msgdef = schemas.get(sid, ("", "ros2msg", ""))
                rec.topics[cid] = Topic(topic, name, msgdef, schema_enc, qos, encoding)
            elif op == OP_MESSAGE:
                cid = body.u16()
                body.u32()
                log_time = body.u64()
                body.u64()
                rec.messages.append((cid, log_time, body.data[body.pos:]))
            elif op == OP_CHUNK and top_level:
                body.u64(), body.u64()
                size = body.u64()
                body.u32()
                compression = body.string()
                data = _decompress(body.take(body.u64()), compression, size)
                if len(data) != size:
                    raise ValueError("chunk size mismatch")
                _records(_Buf(data), rec, schemas, top_level=False)
        except Exception as exc:   # a damaged record (cut data, bad compression, bad text)
            if top_level:
                rec.cut_bytes = len(buf.data) - start
                return False
            raise ValueError(f"damaged record in a chunk: {exc}") from None
    return True


def read_mcap(files: list[Path]) -> Recovered:
    rec = Recovered("mcap", files=[str(f) for f in files])
    for f in files:
        data = f.read_bytes()
        if not data.startswith(MCAP_MAGIC):
            if len(data) < len(MCAP_MAGIC):
                continue                    # killed before the header reached the disk: nothing in it
            raise BagError(f"{f} is not an MCAP file (bad magic bytes)")
        schemas: dict = {}
        ids_before = dict(rec.topics)
        sub = Recovered("mcap")
        _records(_Buf(data[len(MCAP_MAGIC):]), sub, schemas, top_level=True)
        # channel ids are per file: renumber onto the topics found so far
        remap = {}
        for cid, topic in sub.topics.items():
            same = [k for k, t in ids_before.items() if (t.name, t.msgtype) == (topic.name, topic.msgtype)]
            remap[cid] = same[0] if same else max([0, *rec.topics]) + 1
            rec.topics.setdefault(remap[cid], topic)
        rec.messages += [(remap[c], t, d) for c, t, d in sub.messages if c in remap]
        rec.cut_bytes += sub.cut_bytes
    return rec


def read_sqlite3(files: list[Path]) -> Recovered:
    import sqlite3

    rec = Recovered("sqlite3", files=[str(f) for f in files])
    for f in files:
        try:
            conn = sqlite3.connect(str(f))
            try:
                defs = {}
                try:
                    defs = {t: (enc, text) for t, enc, text in conn.execute(
                        "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions")}
                except sqlite3.Error:
                    pass
                offset = max([0, *rec.topics])
                remap = {}
                for tid, name, msgtype, fmt, qos in conn.execute(
                        "SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics"):
                    same = [k for k, t in rec.topics.items() if (t.name, t.msgtype) == (name, msgtype)]
                    remap[tid] = same[0] if same else offset + tid
                    enc, text = defs.get(msgtype, ("ros2msg", ""))
                    rec.topics.setdefault(remap[tid], Topic(name, msgtype, text, enc, qos or "", fmt or "cdr"))
                rec.messages += [(remap[tid], int(ts), bytes(data)) for tid, ts, data in conn.execute(
                    "SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp, id") if tid in remap]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise BagError(f"{f}: the sqlite3 database cannot be read ({exc})") from None
    return rec


def storage_files(bag: Path) -> tuple[str, list[Path]]:
    mcap = sorted(bag.glob("*.mcap"))
    db3 = sorted(bag.glob("*.db3"))
    if mcap and db3:
        raise BagError(f"{bag} holds both .mcap and .db3 files; repair one storage at a time")
    if not mcap and not db3:
        raise BagError(f"{bag} holds no .mcap or .db3 storage file: nothing to repair")
    return ("mcap", mcap) if mcap else ("sqlite3", db3)


def _write(rec: Recovered, out: Path) -> dict:
    """Write the recovered topics and messages as a complete bag."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.metadata import parse_qos

    from o4a_nav import bagio

    store = bagio.typestore()
    counts: dict[str, int] = {}
    writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP if rec.storage == "mcap" else StoragePlugin.SQLITE3)
    writer.open()
    try:
        conns = {}
        for tid, topic in sorted(rec.topics.items()):
            try:
                qos = parse_qos(topic.qos) if topic.qos.strip() else []
            except Exception:
                qos = []
            kwargs = {}
            if topic.msgtype in store.fielddefs:
                kwargs["typestore"] = store
            elif topic.msgdef:
                kwargs.update(msgdef=topic.msgdef, rihs01="RIHS01_" + "0" * 64)
            else:
                raise BagError(f"topic {topic.name}: message type {topic.msgtype} has no definition in the file "
                               f"and is unknown here; cannot rebuild it")
            conns[tid] = writer.add_connection(topic.name, topic.msgtype, serialization_format=topic.serialization,
                                               offered_qos_profiles=qos, **kwargs)
            counts[topic.name] = 0
        for tid, ts, data in sorted(rec.messages, key=lambda m: m[1]):
            writer.write(conns[tid], ts, data)
            counts[rec.topics[tid].name] += 1
    finally:
        writer.close()
    return counts


def repair(bag, out=None) -> dict:
    """Rebuild a cut-off bag. Without `out` the repaired bag takes the folder's place and the
    damaged folder is kept as `<bag>.damaged[-N]`. Returns a summary."""
    import os

    from o4a_nav import bagio

    bag = Path(bag)
    if not bag.is_dir():
        raise BagError(f"bag {bag} does not exist or is not a folder")
    if (bag / "metadata.yaml").is_file():
        try:
            bagio.topics(bag)
            raise BagError(f"{bag} opens as it is (metadata.yaml present and readable): nothing to repair")
        except BagError as exc:
            if "nothing to repair" in str(exc):
                raise
    storage, files = storage_files(bag)
    rec = read_mcap(files) if storage == "mcap" else read_sqlite3(files)
    if not rec.messages:
        raise BagError(f"{bag}: no complete message in {', '.join(f.name for f in files)} "
                       f"(the recorder was killed before its first data reached the disk)")
    target = Path(out) if out is not None else bag.parent / f".{bag.name}.repairing"
    if target.exists():
        raise BagError(f"{target} exists already; choose another --out (a bag is never overwritten)")
    counts = _write(rec, target)
    kept = None
    if out is None:
        kept = bag.parent / f"{bag.name}.damaged"
        n = 1
        while kept.exists():
            n += 1
            kept = bag.parent / f"{bag.name}.damaged-{n}"
        os.replace(bag, kept)
        os.replace(target, bag)
        target = bag
    times = [m[1] for m in rec.messages]
    return {"bag": str(target), "storage": storage, "messages": len(rec.messages), "topics": counts,
            "start_s": min(times) * 1e-9, "end_s": max(times) * 1e-9, "damaged_kept_in": str(kept) if kept else None,
            "cut_bytes": rec.cut_bytes}
