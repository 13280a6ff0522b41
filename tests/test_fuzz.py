"""Fuzz tests of the readers and the tokenisation every stage shares (issue 17): seeded random bytes mixed
with known-good lines. No reader may raise anything but its one-line DataFileError, none may lose a good
line, and a corpus reader must keep line number = doc id. (The web API's fuzz test is in test_web_service.py.)"""

import os
import random
import time

import pytest

from ernie_matching.data import PairEncoder, read_query_title_pairs
from inbatch_negative.data import read_hard_negatives, read_train_pairs
from ns_common.io import (
    DataFileError,
    read_corpus,
    read_fields,
    read_jsonl,
    read_pairwise_labeled,
    read_pairwise_train,
    read_recall_result,
    read_text_pairs,
)
from ns_common.modeling import new_tokenizer
from ns_common.text import convert_example
from ns_common.vocab import build_vocab, write_vocab
from recall.milvus.data import count_lines, iter_corpus_chunks, read_queries
from simcse.data import read_simcse_texts

SEED, FILES, SECONDS = 17, 40, 30
WEIRD = ["\t", "\r", "\x00", "\ufeff", "\u200b", "\u0301", "\U0001f600", "\x1b[31m", "\\", '"', "{", "}", "\u2028", " "]


def garbage_line(rng):
    """One line of hostile bytes (never a newline): invalid UTF-8, tabs, NUL, BOM, control and huge lines."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 60)).replace(b"\n", b"")
    if kind == 1:
        return "".join(rng.choice(WEIRD + ["语", "a", "1"]) for _ in range(rng.randrange(0, 20))).encode()
    if kind == 2:
        return b""
    if kind == 3:
        return ("长" * rng.randrange(10_000, 100_000)).encode()
    if kind == 4:
        return (
            b"\xe8\xaf" + "\t".join("字段" for _ in range(rng.randrange(1, 6))).encode()
        )  # a cut UTF-8 character first
    return "\t".join("".join(rng.choice(WEIRD + ["文"]) for _ in range(3)) for _ in range(rng.randrange(2, 5))).encode()


def write_mixed(path, rng, good_lines, header=None):
    """good_lines interleaved with garbage; returns the 1-based line numbers of the good ones."""
    lines, where = ([header.encode()] if header else []), []
    for good in good_lines:
        for _ in range(rng.randrange(0, 3)):
            lines.append(garbage_line(rng))
        lines.append(good.encode())
        where.append(len(lines))
    ending = rng.choice([b"\n", b"\r\n"])
    with open(path, "wb") as f:
        f.write(ending.join(lines) + rng.choice([ending, b""]))
    return where


def good_rows(rng, i, n_fields, label=False):
    fields = [f"文本{i}_{j} {rng.choice(['语言', 'data', '风险'])}" for j in range(n_fields)]
    if label:
        fields[-1] = rng.choice(["0", "1"])
    return fields


def test_fuzz_readers_keep_every_good_line_and_raise_nothing_else(tmp_path):
    rng = random.Random(SEED)
    deadline = time.time() + SECONDS
    checked = 0
    for n in range(FILES):
        if time.time() > deadline:
            break
        path = str(tmp_path / f"fuzz_{n}.txt")
        shape = n % 6
        if shape == 0:  # one text a line: readers that drop bad lines, and corpus readers that keep positions
            good = [" ".join(good_rows(rng, i, 1)) for i in range(rng.randrange(1, 8))]
            where = write_mixed(path, rng, good)
            assert set(good) <= set(read_simcse_texts(path)) and set(good) <= {f[0] for f in read_fields(path, 1)}
            docs = read_corpus(path)
            assert len(docs) == count_lines(path) and all(docs[line - 1] == text for line, text in zip(where, good))
            chunked = [text for _, chunk in iter_corpus_chunks(path, rng.randrange(1, 5)) for text in chunk]
            assert chunked == docs
            queries, golds = read_queries(path)
            assert golds is not None or set(good) <= set(queries)
        elif shape in (1, 2):  # query<TAB>doc pairs
            good = [tuple(good_rows(rng, i, 2)) for i in range(rng.randrange(1, 8))]
            write_mixed(path, rng, ["\t".join(p) for p in good])
            assert set(good) <= set(read_text_pairs(path)) and set(good) <= {
                (e["query"], e["doc"]) for e in read_train_pairs(path)
            }
            assert set(good) <= set(read_query_title_pairs(path))
            queries, golds = read_queries(path)
            if golds is not None:
                assert set(good) <= set(zip(queries, golds))
        elif shape == 3:  # query<TAB>title<TAB>neg_title with its header, and hard negatives / recall results
            good = [tuple(good_rows(rng, i, 3)) for i in range(rng.randrange(1, 8))]
            write_mixed(path, rng, ["\t".join(t) for t in good], header="query\ttitle\tneg_title")
            assert set(good) <= set(read_pairwise_train(path))
            negatives = read_hard_negatives(path)
            assert all(n in negatives[(q, t)] for q, t, n in good)
            assert {q for q, _, _ in good} <= set(read_recall_result(path))
        elif shape == 4:  # query<TAB>title<TAB>label
            good = [tuple(good_rows(rng, i, 3, label=True)) for i in range(rng.randrange(1, 8))]
            write_mixed(path, rng, ["\t".join(t) for t in good], header="query\ttitle\tlabel")
            assert {(q, t, int(label)) for q, t, label in good} <= set(read_pairwise_labeled(path))
        else:  # JSON Lines
            good = [f'{{"title": "标题{i}", "abstract": "摘要 {i}"}}' for i in range(rng.randrange(1, 8))]
            write_mixed(path, rng, good)
            titles = [obj["title"] for obj in read_jsonl(path, required=("title",)) if isinstance(obj, dict)]
            assert {f"标题{i}" for i in range(len(good))} <= set(titles)
        checked += 1
    assert checked >= 12


def test_a_file_whose_header_is_garbage_is_one_line_error(tmp_path):
    rng = random.Random(SEED)
    for n in range(5):
        path = str(tmp_path / f"header_{n}.txt")
        with open(path, "wb") as f:
            f.write(garbage_line(rng) + b"\nq\tt\tn\n")
        with pytest.raises(DataFileError) as error:
            list(read_pairwise_train(path))
        assert str(error.value).startswith(f"{path}:1: expected header") and "\n" not in str(error.value)


def test_fuzz_tokenisation_of_hostile_text(tmp_path):
    """Random text with control characters, combining marks, emoji and huge runs: ids within max_seq_length,
    [CLS] first and [SEP] last, for single texts and pairs."""
    rng = random.Random(SEED)
    vocab = build_vocab(["中西方语言与文化的差异", "data mining 风险评价"])
    write_vocab(vocab, str(tmp_path / "vocab.txt"))
    tokenizer = new_tokenizer("ernie-gram", str(tmp_path / "vocab.txt"))
    encoder = PairEncoder(tokenizer, 32)
    for _ in range(150):
        text = "".join(rng.choice(WEIRD + ["语言", "data ", "文", "a" * 200]) for _ in range(rng.randrange(0, 40)))
        other = text[::-1] * rng.randrange(1, 3000)
        for ids, types in (
            convert_example(text, tokenizer, 32),
            convert_example(text, tokenizer, 32, other),
            encoder.encode(text, other),
        ):
            assert 2 <= len(ids) == len(types) <= 32
            assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert os.path.isfile(str(tmp_path / "vocab.txt"))
