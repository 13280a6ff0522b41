"""Inputs of the reranker: query/title pair encoding (with a tokenisation cache), the pairwise training
set and its batching, and a lenient query/title pair reader."""

from collections import OrderedDict

from paddle.io import Dataset

from ns_common.errors import BadInputError
from ns_common.io import DataFileError, SkipCounter, iter_raw_lines
from ns_common.text import clip_text, pad_sequences, token_ids

# token types: the two segments, and (mark_matches) their tokens that also occur in the other segment
QUERY_TYPE, TITLE_TYPE, MATCHED_TITLE_TYPE, MATCHED_QUERY_TYPE = 0, 1, 2, 3


class PairEncoder:
    """(query, title) -> (input_ids, token_type_ids) exactly as `tokenizer(query, text_pair=title,
    max_seq_len=max_seq_length, truncation=True)` gives them, but each distinct text is tokenised once.

    Tokenisation (basic + WordPiece, in Python: ~2,200 pairs/s on one core) is a sizeable share of the
    cost next to a mini model (a few hundred pairs/s on 2 cores), and reranked lists repeat the same
    titles across queries: an LRU cache text -> token ids keeps the `cache_size` most recently used texts.

    mark_matches: exact-match token types (see model.py): a title token also in the query gets type 2, a
    query token also in the title type 3.
    """

    def __init__(self, tokenizer, max_seq_length=64, cache_size=200_000, mark_matches=False):
        self.tokenizer = tokenizer
        self.mark_matches = mark_matches
        self.special_ids = {
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
            tokenizer.pad_token_id,
            tokenizer.unk_token_id,
        }
        self.max_seq_length = max_seq_length
        self.cache_size = cache_size
        self.cache = OrderedDict()
        self.hits = self.misses = 0

    def token_ids(self, text):
        text = clip_text(text, self.max_seq_length)  # a 1 MB title costs what a short one does
        ids = self.cache.get(text)
        if ids is not None:
            self.cache.move_to_end(text)
            self.hits += 1
            return ids
        self.misses += 1
        ids = token_ids(self.tokenizer, text, self.max_seq_length)
        self.cache[text] = ids
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return ids

    def encode(self, query, title):
        # prepare_for_model applies the same longest-first truncation and special tokens as tokenizer(...)
        query_ids, title_ids = self.token_ids(query), self.token_ids(title)
        encoded = self.tokenizer.prepare_for_model(
            list(query_ids), list(title_ids), truncation=True, max_length=self.max_seq_length
        )
        input_ids, token_type_ids = encoded["input_ids"], encoded["token_type_ids"]
        if self.mark_matches:
            token_type_ids = mark_exact_matches(
                input_ids, token_type_ids, set(query_ids), set(title_ids), self.special_ids
            )
        return input_ids, token_type_ids

    def pad(self, encoded_pairs):
        """A list of (input_ids, token_type_ids) -> two padded int64 arrays [batch, longest]."""
        input_ids = pad_sequences([e[0] for e in encoded_pairs], self.tokenizer.pad_token_id)
        token_type_ids = pad_sequences([e[1] for e in encoded_pairs], 0)
        return input_ids, token_type_ids

    def encode_batch(self, queries, titles):
        return self.pad([self.encode(q, t) for q, t in zip(queries, titles)])


def mark_exact_matches(input_ids, token_type_ids, query_ids, title_ids, special_ids):
    """Query/title token types -> the matched ones for tokens whose id occurs on the other side (special and
    unknown tokens keep theirs)."""
    marked = list(token_type_ids)
    for i, (token, segment) in enumerate(zip(input_ids, token_type_ids)):
        if token in special_ids:
            continue
        if segment == TITLE_TYPE and token in query_ids:
            marked[i] = MATCHED_TITLE_TYPE
        elif segment == QUERY_TYPE and token in title_ids:
            marked[i] = MATCHED_QUERY_TYPE
    return marked


class PairwiseDataset(Dataset):
    """(query, title, neg_title) triples, encoded up front as a (positive pair, negative pair)."""

    def __init__(self, triples, encoder):
        self.examples = [(encoder.encode(q, pos), encoder.encode(q, neg)) for q, pos, neg in triples]

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index):
        return self.examples[index]


def pairwise_collate(encoder):
    """Batches of triples -> one [2B, L] batch: B positive pairs then B negative pairs, so one forward
    pass (through DataParallel when distributed) scores both sides."""

    def collate(samples):
        return encoder.pad([pos for pos, _ in samples] + [neg for _, neg in samples])

    return collate


def read_query_title_pairs(path):
    """(query, title) from `query<TAB>title[<TAB>more]` lines; a first line `query<TAB>title...` is a
    header. Lines with fewer than two fields or an empty query/title are skipped and counted."""
    counter = SkipCounter(path)
    pairs = []
    for line_no, text in iter_raw_lines(path, counter):
        fields = [x.strip() for x in text.split("\t")]
        if line_no == 1 and fields[:2] == ["query", "title"]:
            continue
        if len(fields) < 2:
            counter.skip(line_no, "lines without a query<TAB>title")
            continue
        if not fields[0] or not fields[1]:
            counter.skip(line_no, "empty query or title")
            continue
        counter.kept += 1
        pairs.append((fields[0], fields[1]))
    counter.report()
    if not pairs:
        raise DataFileError(f"{path}: no query<TAB>title lines")
    return pairs


def read_pairs_to_score(path):
    """read_query_title_pairs for a command line: a bad or empty file ends the program with one line."""
    try:
        return read_query_title_pairs(path)
    except DataFileError as e:
        raise BadInputError(str(e))  # noqa: B904
