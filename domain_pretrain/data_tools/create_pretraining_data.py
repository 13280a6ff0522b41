"""Raw domain text -> sentences -> jieba words -> token ids with whole-word boundaries.

    python domain_pretrain/data_tools/create_pretraining_data.py \
        --input_path data/sample/pretrain/domain_corpus.txt \
        --model_name_or_path output/bootstrap/ernie \
        --output_prefix output/pretrain_data/domain

writes, as PaddleNLP's ERNIE data tools do,
    {prefix}_ids.npy  every token id of the corpus, flat (uint16 when the vocabulary fits, else int32)
    {prefix}_idx.npz  lens (tokens per sentence), sents (cumulative token offsets, n_sentences + 1),
                      docs (cumulative sentence offsets, n_documents + 1), and, added here,
                      word_starts (1 where a token starts a jieba word) and the vocabulary's size and
                      checksum, so training can refuse data built with another vocabulary.

Input: one document a line (--doc_format line, the default), or documents separated by blank lines
with one sentence (or paragraph) a line (--doc_format blank). Sentences end at 。！？； and at . ! ? ;
when a Chinese character follows (CSL abstracts use ASCII punctuation).
"""

import argparse
import array
import hashlib
import logging
import multiprocessing
import os
import re
import sys

import numpy as np
from tqdm import tqdm

from ns_common.cli import check_outputs, entry_point, fail
from ns_common.io import DataFileError, SkipCounter, iter_raw_lines, read_texts
from ns_common.modeling import load_tokenizer
from ns_common.utils import Timer, logger, quiet_paddlenlp

# a sentence ends after Chinese end punctuation, or after ASCII end punctuation that is followed by a
# Chinese character (so "3.5" and "e.g. x" stay whole)
SENTENCE_END = re.compile(r"(?<=[。！？；])|(?<=[.!?;])(?=[\u4e00-\u9fff])")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input_path", nargs="+", required=True, help="raw text file(s)")
    parser.add_argument(
        "--model_name_or_path",
        required=True,
        help="its tokenizer (vocab.txt) turns words into ids: use the model you will pretrain",
    )
    parser.add_argument("--output_prefix", required=True, help="writes {prefix}_ids.npy and {prefix}_idx.npz")
    parser.add_argument(
        "--doc_format",
        choices=("line", "blank"),
        default="line",
        help="line: one document a line; blank: documents separated by blank lines, one sentence a line",
    )
    parser.add_argument("--workers", type=int, default=1, help="tokenising processes")
    return parser.parse_args(argv)


def split_sentences(text):
    """Sentences of one paragraph, end punctuation kept, empty pieces dropped."""
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def read_documents(paths, doc_format="line"):
    """Yields documents as lists of sentences; bad lines are skipped and counted per file."""
    for path in paths:
        if doc_format == "line":
            for text in read_texts(path):
                yield split_sentences(text)
            continue
        counter = SkipCounter(path)
        sentences = []
        for _, text in iter_raw_lines(path, counter):
            if text.strip():
                sentences.extend(split_sentences(text))
                counter.kept += 1
            elif sentences:
                yield sentences
                sentences = []
        if sentences:
            yield sentences
        counter.report()


def vocab_fingerprint(tokenizer):
    """(size, sha1 of the token list): data and model must agree on both."""
    tokens = [tokenizer.convert_ids_to_tokens(i) for i in range(len(tokenizer))]
    return len(tokens), hashlib.sha1("\n".join(tokens).encode("utf-8")).hexdigest()


class WordTokenizer:
    """jieba words -> tokenizer pieces; remembers each word's pieces (words repeat a lot)."""

    def __init__(self, model_name_or_path):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        quiet_paddlenlp()
        self.jieba = jieba
        self.tokenizer = load_tokenizer(model_name_or_path)
        self.cache = {}

    def word_ids(self, word):
        ids = self.cache.get(word)
        if ids is None:
            ids = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(word))
            self.cache[word] = ids
        return ids

    def sentence(self, sentence):
        """Returns (ids, word_starts) of one sentence."""
        ids, starts = [], []
        for word in self.jieba.lcut(sentence):
            pieces = self.word_ids(word)  # whitespace gives no pieces
            ids.extend(pieces)
            starts.extend([1] + [0] * (len(pieces) - 1) if pieces else [])
        return ids, starts

    def document(self, sentences):
        """Returns [(ids, word_starts), ...] for the sentences that have tokens."""
        encoded = (self.sentence(s) for s in sentences)
        return [(ids, starts) for ids, starts in encoded if ids]


_worker = None


def _init_worker(model_name_or_path):
    global _worker
    _worker = WordTokenizer(model_name_or_path)


def _encode_document(sentences):
    return _worker.document(sentences)


def encode_documents(documents, model_name_or_path, workers=1):
    """Yields encoded documents in input order, in `workers` processes when > 1."""
    if workers <= 1:
        _init_worker(model_name_or_path)
        for sentences in documents:
            yield _encode_document(sentences)
        return
    with multiprocessing.get_context("spawn").Pool(
        workers, initializer=_init_worker, initargs=(model_name_or_path,)
    ) as pool:
        yield from pool.imap(_encode_document, documents, chunksize=32)


def build(paths, model_name_or_path, output_prefix, doc_format="line", workers=1):
    """Writes {prefix}_ids.npy and {prefix}_idx.npz; returns a dict of counts."""
    timer = Timer()
    for path in paths:
        if not os.path.isfile(path):
            raise DataFileError(f"--input_path: file not found: {path}")
    tokenizer = load_tokenizer(model_name_or_path)
    vocab_size, vocab_sha1 = vocab_fingerprint(tokenizer)

    ids = array.array("i")
    word_starts = array.array("b")
    lens = array.array("q")
    doc_sentences = array.array("q", [0])
    empty_docs = 0
    documents = read_documents(paths, doc_format)
    progress = tqdm(
        encode_documents(documents, model_name_or_path, workers), desc="tokenising", unit="doc", mininterval=2
    )
    for encoded in progress:
        if not encoded:
            empty_docs += 1  # a document with no token at all (only spaces, say)
            continue
        for sentence_ids, starts in encoded:
            ids.extend(sentence_ids)
            word_starts.extend(starts)
            lens.append(len(sentence_ids))
        doc_sentences.append(doc_sentences[-1] + len(encoded))
    if len(doc_sentences) == 1:
        raise DataFileError(f"--input_path {' '.join(paths)}: no document with any text")
    if empty_docs:
        logger.warning(f"skipped {empty_docs} documents without any token")

    ids = np.frombuffer(ids, dtype=np.int32)
    if ids.size and ids.max() >= vocab_size:
        raise ValueError(f"token id {ids.max()} outside the vocabulary ({vocab_size})")
    dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32
    lens = np.frombuffer(lens, dtype=np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(output_prefix)), exist_ok=True)
    np.save(f"{output_prefix}_ids.npy", ids.astype(dtype))
    np.savez(
        f"{output_prefix}_idx.npz",
        lens=lens.astype(np.int32),
        sents=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        docs=np.asarray(doc_sentences, dtype=np.int64),
        word_starts=np.frombuffer(word_starts, dtype=np.int8).astype(np.uint8),
        vocab_size=np.int64(vocab_size),
        vocab_sha1=np.str_(vocab_sha1),
    )
    stats = {
        "documents": len(doc_sentences) - 1,
        "sentences": len(lens),
        "tokens": int(ids.size),
        "seconds": timer.seconds,
    }
    logger.info(
        f"{stats['documents']} documents, {stats['sentences']} sentences, {stats['tokens']} tokens "
        f"({dtype.__name__}) in {stats['seconds']:.1f}s -> {output_prefix}_ids.npy, {output_prefix}_idx.npz"
    )
    return stats


@entry_point
def main(argv=None):
    args = parse_args(argv)
    if args.workers < 1:
        fail("--workers must be at least 1")
    check_outputs(
        files=[("output_prefix", args.output_prefix + suffix) for suffix in ("_ids.npy", "_idx.npz")],
        inputs=[("input_path", path) for path in args.input_path],
    )
    try:
        build(args.input_path, args.model_name_or_path, args.output_prefix, args.doc_format, args.workers)
    except DataFileError as e:
        fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
