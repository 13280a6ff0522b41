"""Tokenisation and batching shared by every stage (PaddleNLP's convert_example / batchify_fn)."""

import functools
import re
import unicodedata

import numpy as np

# Every text is cut to this many characters per token of max_seq_length before it is tokenised (1,024
# characters for 64 tokens): a token takes at least one character, so the cut text still fills the model
# (short of pathological inputs, e.g. hundreds of blanks in a row), and a 1 MB field costs no more than
# a short one. Without it tokenising is slow and the tokenizer's truncation quadratic (4 s per 100k pair).
CHARS_PER_TOKEN = 16


def clip_text(text, max_seq_length):
    """The first CHARS_PER_TOKEN * max_seq_length characters of text (all of a short one)."""
    return text[: CHARS_PER_TOKEN * max_seq_length]


def token_ids(tokenizer, text, max_seq_length):
    """Token ids of text (no special tokens), at most max_seq_length of them, in time linear in the cut text."""
    if hasattr(tokenizer, "encode_ids"):  # a SentencePiece tokenizer: its own fast path
        return tokenizer.encode_ids(clip_text(text, max_seq_length))[:max_seq_length]
    return FastWordPiece.of(tokenizer).ids(clip_text(text, max_seq_length))[:max_seq_length]


@functools.lru_cache(maxsize=1)
def piece_patterns():
    """(covered, pieces) regexes of FastWordPiece, built once a process. Characters that are a token of their
    own whatever surrounds them, and that lowercasing and accent stripping leave alone: CJK unified ideographs,
    ASCII punctuation, and the punctuation / symbols of the BMP."""
    symbols = [
        chr(cp)
        for cp in range(0x80, 0x10000)
        if not 0x4E00 <= cp <= 0x9FFF
        and unicodedata.category(chr(cp))[0] in "PS"
        and unicodedata.normalize("NFD", chr(cp)) == chr(cp) == chr(cp).lower()
    ]
    ascii_punct = "".join(chr(cp) for cp in range(0x21, 0x7F) if not chr(cp).isalnum())
    single_class = "\\u4e00-\\u9fff" + re.escape(ascii_punct + "".join(symbols))
    return re.compile(rf"[ \t\n\rA-Za-z0-9{single_class}]*"), re.compile(rf"[A-Za-z0-9]+|[{single_class}]")


class FastWordPiece:
    """The ids `tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))` gives, for ERNIE-style tokenizers
    (basic tokenizer + WordPiece), several times faster on the texts this project sees.

    PaddleNLP's tokenizer walks every character through Python-level cleaning, lowercasing, accent stripping and
    punctuation splitting: ~100 us a title, as much as a mini model's forward pass. But in its basic tokenizer a
    CJK character, a punctuation or symbol character and a blank always end a word, so a text of only such
    characters and ASCII letters/digits is a sequence of pieces each tokenised on its own: each distinct piece
    goes through the real tokenizer once and is cached. Any other text (another script, accents, control
    characters, a special token such as [SEP] written in it) goes through the real tokenizer whole, so the
    ids are always the tokenizer's own (tests/test_text.py compares them on every sample and CSL text)."""

    MAX_CACHE = 200_000  # distinct pieces kept (ASCII words, characters)

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        basic = getattr(tokenizer, "basic_tokenizer", None)
        self.enabled = (
            hasattr(tokenizer, "wordpiece_tokenizer")
            and basic is not None
            and basic.tokenize_chinese_chars
            and not getattr(basic, "never_split", None)
        )
        self.covered, self.pieces = piece_patterns()
        self.specials = sorted(
            set(tokenizer.all_special_tokens) | set(getattr(tokenizer, "unique_no_split_tokens", []))
        )
        self.cache = {}

    @staticmethod
    def of(tokenizer):
        """The tokenizer's FastWordPiece, made once and kept on the tokenizer."""
        fast = getattr(tokenizer, "_fast_wordpiece", None)
        if fast is None:
            fast = FastWordPiece(tokenizer)
            tokenizer._fast_wordpiece = fast
        return fast

    def slow_ids(self, text):
        return self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(text))

    def ids(self, text):
        if not self.enabled or not self.covered.fullmatch(text) or any(s in text for s in self.specials):
            return self.slow_ids(text)
        out, cache = [], self.cache
        for piece in self.pieces.findall(text):
            ids = cache.get(piece)
            if ids is None:
                if len(cache) >= self.MAX_CACHE:
                    cache.clear()
                ids = cache[piece] = self.slow_ids(piece)
            out.extend(ids)
        return out


def convert_example(text, tokenizer, max_seq_length=64, text_pair=None):
    """One text (or a text pair) -> (input_ids, token_type_ids), truncated to max_seq_length: the same
    ids as `tokenizer(text, text_pair, max_length=max_seq_length, truncation=True)` (longest-first
    truncation only ever keeps a prefix of each side, never more than max_seq_length tokens of it)."""
    pair_ids = token_ids(tokenizer, text_pair, max_seq_length) if text_pair is not None else None
    encoded = tokenizer.prepare_for_model(
        token_ids(tokenizer, text, max_seq_length), pair_ids, truncation=True, max_length=max_seq_length
    )
    return encoded["input_ids"], encoded["token_type_ids"]


def pad_sequences(sequences, pad_value=0, dtype="int64"):
    """Right-pads a list of id lists into one [batch, max_len] array."""
    max_len = max(len(s) for s in sequences)
    out = np.full((len(sequences), max_len), pad_value, dtype=dtype)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


ROLES = ("query", "doc")


def with_role(texts, tokenizer, role=None) -> list:
    """texts with the prefix the tokenizer's model was trained with for their role in a search: "query" or "doc"
    (a converted multilingual-e5: `query: ` / `passage: `, its tokenizer's query_prefix / doc_prefix); unchanged
    for role None or a tokenizer without prefixes (every ERNIE one)."""
    if role is None:
        return list(texts)
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES} or None, got {role!r}")
    prefix = getattr(tokenizer, f"{role}_prefix", "") or ""
    return [prefix + t for t in texts] if prefix else list(texts)


def batch_encode(texts, tokenizer, max_seq_length=64, text_pairs=None, role=None):
    """Texts -> padded (input_ids, token_type_ids) numpy arrays, ready for a model or a predictor. role: the texts'
    role in a search ("query" or "doc", with_role), for a model trained with prefixes."""
    texts = with_role(texts, tokenizer, role)
    pairs = text_pairs if text_pairs is not None else [None] * len(texts)
    encoded = [convert_example(t, tokenizer, max_seq_length, p) for t, p in zip(texts, pairs)]
    input_ids = pad_sequences([e[0] for e in encoded], tokenizer.pad_token_id)
    token_type_ids = pad_sequences([e[1] for e in encoded], 0)
    return input_ids, token_type_ids


def batches(items, batch_size):
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def has_visible_text(text):
    """True when text holds at least one letter, number, punctuation mark or symbol (Unicode categories L, N, P, S):
    a text of blanks, control or format characters (U+200B, U+FEFF), noncharacters (U+FFFF), unassigned code
    points, private-use characters or combining marks alone has nothing to search for."""
    return any(unicodedata.category(char)[0] in "LNPS" for char in text)


def clean_field(text) -> str:
    """A field as written: tab, CR and LF (which would break the line) become a space, the ends are stripped (as
    read_fields strips them); whitespace inside (double spaces, U+3000, NBSP) is kept, so a title read back equals
    the title written (recall_result.txt against the gold file)."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ").strip()
