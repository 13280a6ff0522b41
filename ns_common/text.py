"""Tokenisation and batching shared by every stage (PaddleNLP's convert_example / batchify_fn)."""
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
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(clip_text(text, max_seq_length)))[:max_seq_length]


def convert_example(text, tokenizer, max_seq_length=64, text_pair=None):
    """One text (or a text pair) -> (input_ids, token_type_ids), truncated to max_seq_length: the same
    ids as `tokenizer(text, text_pair, max_length=max_seq_length, truncation=True)` (longest-first
    truncation only ever keeps a prefix of each side, never more than max_seq_length tokens of it)."""
    pair_ids = token_ids(tokenizer, text_pair, max_seq_length) if text_pair is not None else None
    encoded = tokenizer.prepare_for_model(token_ids(tokenizer, text, max_seq_length), pair_ids,
                                          truncation=True, max_length=max_seq_length)
    return encoded["input_ids"], encoded["token_type_ids"]


def pad_sequences(sequences, pad_value=0, dtype="int64"):
    """Right-pads a list of id lists into one [batch, max_len] array."""
    max_len = max(len(s) for s in sequences)
    out = np.full((len(sequences), max_len), pad_value, dtype=dtype)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


def batch_encode(texts, tokenizer, max_seq_length=64, text_pairs=None):
    """Texts -> padded (input_ids, token_type_ids) numpy arrays, ready for a model or a predictor."""
    pairs = text_pairs if text_pairs is not None else [None] * len(texts)
    encoded = [convert_example(t, tokenizer, max_seq_length, p) for t, p in zip(texts, pairs)]
    input_ids = pad_sequences([e[0] for e in encoded], tokenizer.pad_token_id)
    token_type_ids = pad_sequences([e[1] for e in encoded], 0)
    return input_ids, token_type_ids


def batches(items, batch_size):
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]
