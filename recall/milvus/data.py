"""Corpus and query files of the Milvus stage.

The corpus is streamed in chunks (a 10M-line corpus never sits in memory as tokens), with the same rules
as ns_common.io.read_corpus: the 0-based line number is the doc id, so an empty or undecodable line is
kept as an empty document and counted, never dropped.
"""

import hashlib

from ns_common.io import SkipCounter, check_file, read_fields


def count_lines(path):
    """Number of lines (a last line without a newline counts), read in binary blocks."""
    n, last = 0, b"\n"
    with open(check_file(path, "corpus file"), "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def iter_corpus_chunks(path, chunk_size, start_line=0, report=True):
    """Yields (first_id, [texts]) of up to chunk_size documents, starting at 0-based line start_line; report:
    one warning at the end counting empty and undecodable lines."""
    counter = SkipCounter(path)
    chunk, first_id = [], start_line
    with open(check_file(path, "corpus file"), "rb") as f:
        for line_no, raw in enumerate(f):
            if line_no < start_line:
                continue
            try:
                text = raw.decode("utf-8").strip().lstrip("\ufeff")
            except UnicodeDecodeError:
                counter.skip(line_no + 1, "invalid UTF-8 lines (kept as empty documents)")
                text = None
            if text and "\x00" in text:
                counter.skip(line_no + 1, "lines with NUL bytes (kept as empty documents)")
                text = None
            if text == "":
                counter.skip(line_no + 1, "empty documents (kept)")
            counter.kept += 1
            chunk.append(text or "")
            if len(chunk) == chunk_size:
                yield first_id, chunk
                first_id, chunk = first_id + len(chunk), []
    if chunk:
        yield first_id, chunk
    if report:
        counter.report()


def corpus_fingerprint(path):
    """(documents, sha1 hex of the documents joined by newlines) of a corpus file, its documents as the collection
    stores them (search.features.corpus_fingerprint gives the same for the same texts): which corpus built a
    collection, and which one a fitted ranking's statistics come from."""
    return corpus_summary(path)[:2]


def corpus_summary(path):
    """(documents, sha1 as corpus_fingerprint, documents with text) in one pass: a corpus whose every line is empty,
    undecodable or binary has no text to embed or search."""
    digest, n_docs, n_texts = hashlib.sha1(), 0, 0
    for _, texts in iter_corpus_chunks(path, 65536, report=False):
        for text in texts:
            digest.update((("\n" if n_docs else "") + text).encode("utf-8"))
            n_docs += 1
            n_texts += bool(text)
    return n_docs, digest.hexdigest(), n_texts


def read_queries(path):
    """`query<TAB>gold doc` lines (recall dev/test files) or one plain query a line.

    Returns (queries, golds) where golds is None for plain queries. The format is decided by the first
    non-empty line; lines of the other shape are skipped and counted like any malformed line.
    """
    check_file(path, "--query_file")
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    if "\t" in first:
        pairs = list(read_fields(path, 2))
        return [q for q, _ in pairs], [g for _, g in pairs]
    return [fields[0] for fields in read_fields(path, 1)], None
