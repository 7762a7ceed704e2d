"""A minimal reader for frozen TensorFlow ``GraphDef`` files (no TensorFlow needed).

Only what porting a frozen inference graph needs: node names, ops, inputs, and the
attributes ``value`` (constant tensors), ``strides``, ``padding``, ``ksize``, ``T`` ….
The protobuf wire format is decoded by hand; field numbers follow TensorFlow's
``graph.proto``, ``node_def.proto``, ``attr_value.proto`` and ``tensor.proto``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield ``(field_number, wire_type, value)``; value is int or bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"GraphDef: unsupported protobuf wire type {wire} at byte {pos}")
        yield num, wire, val


def _packed_ints(wire: int, val) -> list[int]:
    if wire == 0:
        return [val]
    out, pos = [], 0
    while pos < len(val):
        v, pos = _varint(val, pos)
        out.append(v)
    return out


def _tensor(buf: bytes) -> np.ndarray:
    dtype, shape, content, floats, ints = 1, [], None, [], []
    for num, wire, val in _fields(buf):
        if num == 1:
            dtype = val
        elif num == 2:
            shape = [next((v for n, _, v in _fields(d) if n == 1), 0) for n, _, d in _fields(val) if n == 2]
        elif num == 4:
            content = val
        elif num == 5:
            floats += (list(struct.unpack(f"<{len(val) // 4}f", val)) if wire == 2
                       else [struct.unpack("<f", val)[0]])
        elif num in (7, 10):
            ints += _packed_ints(wire, val)
    if dtype not in _DTYPES:
        raise ValueError(f"GraphDef: unsupported tensor dtype {dtype}")
    np_dtype = _DTYPES[dtype]
    size = int(np.prod(shape)) if shape else 1
    if content is not None:
        arr = np.frombuffer(content, np_dtype).copy()
    else:
        vals = floats if np_dtype in (np.float32, np.float64) else ints
        arr = np.full(size, vals[0] if len(vals) == 1 else 0, np_dtype) if len(vals) <= 1 else np.array(vals, np_dtype)
    return arr.reshape(shape)


def _attr(buf: bytes):
    for num, wire, val in _fields(buf):
        if num == 2:
            return val.decode()
        if num == 3:
            return val
        if num == 4:
            return struct.unpack("<f", val)[0]
        if num == 5:
            return bool(val)
        if num == 6:
            return val
        if num == 8:
            return _tensor(val)
        if num == 1:  # list
            items: list = []
            for n, w, v in _fields(val):
                if n == 2:
                    items.append(v.decode())
                elif n == 3:
                    items += _packed_ints(w, v)
                elif n == 4:
                    items += list(struct.unpack(f"<{len(v) // 4}f", v)) if w == 2 else [struct.unpack("<f", v)[0]]
            return items
    return None


@dataclass
class Node:
    """One ``NodeDef``: name, op, input names and decoded attributes."""

    name: str
    op: str
    inputs: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)


def read_graph(path: str | Path) -> dict[str, Node]:
    """Parse a frozen ``GraphDef`` file into ``{name: Node}`` in file order."""
    buf = Path(path).read_bytes()
    nodes: dict[str, Node] = {}
    for num, _, val in _fields(buf):
        if num != 1:
            continue
        node = Node("", "")
        for n, _, v in _fields(val):
            if n == 1:
                node.name = v.decode()
            elif n == 2:
                node.op = v.decode()
            elif n == 3:
                node.inputs.append(v.decode())
            elif n == 5:
                key = value = None
                for k, _, kv in _fields(v):
                    if k == 1:
                        key = kv.decode()
                    elif k == 2:
                        value = _attr(kv)
                node.attrs[key] = value
        nodes[node.name] = node
    return nodes
