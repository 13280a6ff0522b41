"""The pretraining dataset over {prefix}_ids.npy + {prefix}_idx.npz (see data_tools/).

A sample is [CLS] A [SEP] B [SEP] from consecutive sentences of one document: sentences are grouped
greedily up to max_seq_len - 3 tokens and cut at a random sentence boundary into A and B (a group of
one sentence, e.g. a title, loses its end mark and is cut at a random word boundary). A and B are swapped with probability
0.5: the sentence-order label. Whole-word n-gram masking (ERNIE): n <= 3 words, masked_lm_prob of the
tokens, 80% [MASK] / 10% random token / 10% kept.

Every random choice of sample number g comes from a generator seeded with (seed, g): the batches of a
run depend only on (seed, consumed samples), which is what makes a resumed run equal an uninterrupted one.
"""

import os

import numpy as np

from ns_common.io import DataFileError
from ns_common.text import pad_sequences

SPLIT_SEED = 1234  # documents are shuffled once, with a fixed seed, before the train/valid/test split
NGRAM_WEIGHTS = 1.0 / np.arange(1, 4)  # ERNIE: P(n) proportional to 1/n, n = 1..3 words
NGRAM_WEIGHTS /= NGRAM_WEIGHTS.sum()
SENTENCE_END_MARKS = ("。", "！", "？", "；", ".", "!", "?", ";")


class IndexedCorpus:
    """The token ids, sentence and document offsets and word starts written by the data tools."""

    def __init__(self, prefix):
        if prefix.endswith("_ids.npy") or prefix.endswith("_idx.npz"):
            prefix = prefix[: -len("_ids.npy")]
        ids_file, idx_file = f"{prefix}_ids.npy", f"{prefix}_idx.npz"
        for path in (ids_file, idx_file):
            if not os.path.isfile(path):
                raise DataFileError(
                    f"pretraining data not found: {path} (run domain_pretrain/data_tools/create_pretraining_data.py)"
                )
        self.prefix = prefix
        self.ids = np.load(ids_file, mmap_mode="r")
        with np.load(idx_file) as idx:
            missing = [k for k in ("sents", "docs", "word_starts", "vocab_size", "vocab_sha1") if k not in idx]
            if missing:
                raise DataFileError(
                    f"{idx_file}: missing array {missing[0]!r} (rebuild it with this project's data tools)"
                )
            self.sents = idx["sents"]
            self.docs = idx["docs"]
            self.word_starts = idx["word_starts"]
            self.vocab_size = int(idx["vocab_size"])
            self.vocab_sha1 = str(idx["vocab_sha1"])
        if len(self.word_starts) != len(self.ids) or self.sents[-1] != len(self.ids):
            raise DataFileError(
                f"{prefix}: ids and index disagree ({len(self.ids)} ids, index counts {self.sents[-1]}): rebuild both"
            )

    @property
    def n_docs(self):
        return len(self.docs) - 1

    @property
    def n_tokens(self):
        return len(self.ids)


def split_documents(n_docs, split="949,50,1"):
    """Shuffled document numbers for train, valid and test, in the proportions of `split`."""
    weights = [float(x) for x in str(split).replace("/", ",").split(",")]
    if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"--split {split!r}: expected three non-negative weights like 949,50,1")
    weights = np.asarray(weights) / sum(weights)
    bounds = np.round(np.cumsum(np.concatenate([[0.0], weights])) * n_docs).astype(int)
    order = np.random.RandomState(SPLIT_SEED).permutation(n_docs)
    return [np.sort(order[bounds[i] : bounds[i + 1]]) for i in range(3)]


def group_sentences(corpus, doc_numbers, max_tokens):
    """(first sentence, number of sentences) of every sample: consecutive sentences of one document,
    grouped greedily up to max_tokens; a longer sentence is a group of its own (truncated later)."""
    lens = np.diff(corpus.sents)
    groups = []
    for doc in doc_numbers:
        start, end = corpus.docs[doc], corpus.docs[doc + 1]
        first, total = start, 0
        for sent in range(start, end):
            if sent > first and total + lens[sent] > max_tokens:
                groups.append((first, sent - first, total))
                first, total = sent, 0
            total += lens[sent]
        groups.append((first, end - first, total))
    # a group needs two tokens to make two segments
    return np.asarray([(f, n) for f, n, total in groups if total >= 2], dtype=np.int64).reshape(-1, 2)


class PretrainingDataset:
    """Samples of one split; `example(g)` is sample number g (wrapping into later epochs), masked."""

    def __init__(
        self,
        corpus,
        doc_numbers,
        tokenizer,
        max_seq_len=128,
        masked_lm_prob=0.15,
        seed=1234,
        shuffle=True,
        span_views=False,
    ):
        """span_views: each example also carries its two spans on their own, unmasked ([CLS] A [SEP] and
        [CLS] B [SEP], in document order) for the span contrast."""
        self.span_views = span_views
        self.corpus = corpus
        self.max_seq_len = max_seq_len
        self.masked_lm_prob = masked_lm_prob
        self.seed = seed
        self.shuffle = shuffle
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.mask_id, self.pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id
        special = {tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
        # random replacements never produce a special token
        self.random_ids = np.asarray([i for i in range(corpus.vocab_size) if i not in special], dtype=np.int64)
        end_marks = [t for t in SENTENCE_END_MARKS if t in tokenizer.get_vocab()]
        self.end_mark_ids = np.asarray(tokenizer.convert_tokens_to_ids(end_marks), dtype=np.int64)
        self.samples = group_sentences(corpus, doc_numbers, max_seq_len - 3)
        self._epoch_order = {}

    def __len__(self):
        return len(self.samples)

    def sample_at(self, g):
        """The sample behind sample number g: epoch g // len, position g % len of that epoch's order."""
        epoch, position = divmod(g, len(self.samples))
        if not self.shuffle:
            return position
        if epoch not in self._epoch_order:
            self._epoch_order = {epoch: np.random.RandomState([self.seed, epoch]).permutation(len(self.samples))}
        return self._epoch_order[epoch][position]

    def example(self, g):
        """Returns dict(input_ids, token_type_ids, masked_positions, masked_labels, sop_label, word_starts),
        plus span_a_ids, span_b_ids with span_views."""
        rng = np.random.default_rng([self.seed, g])
        first, n_sents = self.samples[self.sample_at(g)]
        start, end = self.corpus.sents[first], self.corpus.sents[first + n_sents]
        ids = np.asarray(self.corpus.ids[start:end], dtype=np.int64)
        starts = np.asarray(self.corpus.word_starts[start:end], dtype=bool)

        # cut into A | B at a sentence boundary, or at a word boundary inside a single sentence
        if n_sents > 1:
            cut = self.corpus.sents[first + rng.integers(1, n_sents)] - start
        else:
            # without its end mark: otherwise "which half ends with 。" would give the order away
            while len(ids) > 2 and ids[-1] in self.end_mark_ids:
                ids, starts = ids[:-1], starts[:-1]
            inner = np.flatnonzero(starts[1:]) + 1
            cut = rng.choice(inner) if len(inner) else rng.integers(1, len(ids))
        a, b = ids[:cut], ids[cut:]
        a_starts, b_starts = starts[:cut], starts[cut:]
        # truncate the longer side (A from its front, B from its end) so the A|B border stays
        extra = len(a) + len(b) - (self.max_seq_len - 3)
        while extra > 0:
            if len(a) > len(b):
                a, a_starts = a[1:], a_starts[1:]
            else:
                b, b_starts = b[:-1], b_starts[:-1]
            extra -= 1
        a_starts = a_starts.copy()
        a_starts[0] = True  # a word cut by truncation counts as a word
        b_starts = b_starts.copy()
        b_starts[0] = True

        spans = {
            "span_a_ids": np.concatenate([[self.cls_id], a, [self.sep_id]]),
            "span_b_ids": np.concatenate([[self.cls_id], b, [self.sep_id]]),
        }
        sop_label = int(rng.random() < 0.5)  # 1: the segments are in the wrong order
        if sop_label:
            a, b, a_starts, b_starts = b, a, b_starts, a_starts
        input_ids = np.concatenate([[self.cls_id], a, [self.sep_id], b, [self.sep_id]])
        token_type_ids = np.concatenate([np.zeros(len(a) + 2, np.int64), np.ones(len(b) + 1, np.int64)])
        word_starts = np.concatenate([[False], a_starts, [False], b_starts, [False]])
        maskable = np.concatenate([[False], np.ones(len(a), bool), [False], np.ones(len(b), bool), [False]])
        input_ids, positions, labels = self.mask_words(input_ids, word_starts, maskable, rng)
        example = dict(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            masked_positions=positions,
            masked_labels=labels,
            sop_label=sop_label,
            word_starts=word_starts,
        )
        return {**example, **spans} if self.span_views else example

    def mask_words(self, input_ids, word_starts, maskable, rng):
        """ERNIE whole-word n-gram masking. Returns (masked input ids, positions, original ids)."""
        # words as [begin, end) token ranges: a word ends where the next word or a special token begins
        begins = np.flatnonzero(word_starts & maskable)
        stops = np.flatnonzero(word_starts | ~maskable)
        ends = stops[np.searchsorted(stops, begins, side="right")]  # the final [SEP] is always a stop
        n_tokens = int(maskable.sum())
        budget = max(1, int(round(n_tokens * self.masked_lm_prob)))

        covered = np.zeros(len(input_ids), bool)
        n_covered = 0
        ngram_sizes = rng.choice(3, size=len(begins), p=NGRAM_WEIGHTS) + 1
        for w in rng.permutation(len(begins)):
            if n_covered >= budget:
                break
            # an n-gram of up to 3 words from word w; shorter if it would exceed the budget or
            # cross the [SEP] between the segments
            n = ngram_sizes[w]
            while n > 0:
                last = min(w + n, len(begins)) - 1
                span = (begins[w], ends[last])
                if n_covered + span[1] - span[0] <= budget and maskable[span[0] : span[1]].all():
                    break
                n -= 1
            if n == 0 or covered[span[0] : span[1]].any():
                continue
            covered[span[0] : span[1]] = True
            n_covered += span[1] - span[0]

        positions = np.flatnonzero(covered)
        labels = input_ids[positions].copy()
        masked = input_ids.copy()
        draws = rng.random(len(positions))
        masked[positions[draws < 0.8]] = self.mask_id  # 80% [MASK]
        random_positions = positions[draws >= 0.9]  # 10% a random token, the other 10% kept
        masked[random_positions] = rng.choice(self.random_ids, size=len(random_positions))
        return masked, positions, labels

    def batch(self, sample_numbers):
        """Collates examples into padded numpy arrays; masked positions index the flattened batch."""
        examples = [self.example(g) for g in sample_numbers]
        input_ids = pad_sequences([e["input_ids"] for e in examples], self.pad_id)
        token_type_ids = pad_sequences([e["token_type_ids"] for e in examples], 0)
        seq_len = input_ids.shape[1]
        positions = np.concatenate([e["masked_positions"] + i * seq_len for i, e in enumerate(examples)]).astype(
            np.int64
        )
        labels = np.concatenate([e["masked_labels"] for e in examples]).astype(np.int64)
        sop_labels = np.asarray([e["sop_label"] for e in examples], dtype=np.int64)
        n_tokens = sum(len(e["input_ids"]) for e in examples)
        batch = dict(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            masked_positions=positions,
            masked_labels=labels,
            sop_labels=sop_labels,
            n_tokens=n_tokens,
        )
        if self.span_views:
            for key in ("span_a_ids", "span_b_ids"):
                batch[key] = pad_sequences([e[key] for e in examples], self.pad_id)
        return batch


def train_batch_numbers(step, micro_batch_size, rank=0, world_size=1):
    """Sample numbers of this rank's share of global batch `step` (0-based): the global batch is
    micro_batch_size * world_size consecutive sample numbers, rank r takes the r-th slice."""
    global_batch = micro_batch_size * world_size
    first = step * global_batch + rank * micro_batch_size
    return range(first, first + micro_batch_size)


def eval_batches(dataset, batch_size, max_batches=None):
    """Fixed batches over a split (no shuffle, each sample once), at most max_batches of them."""
    n = len(dataset)
    if max_batches is not None and max_batches >= 0:
        n = min(n, max_batches * batch_size)
    for first in range(0, n, batch_size):
        yield dataset.batch(range(first, min(first + batch_size, n)))
