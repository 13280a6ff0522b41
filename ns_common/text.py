"""Tokenisation and batching shared by every stage (PaddleNLP's convert_example / batchify_fn)."""
import numpy as np


def convert_example(text, tokenizer, max_seq_length=64, text_pair=None):
    """One text (or a text pair) -> (input_ids, token_type_ids), truncated to max_seq_length."""
    encoded = tokenizer(text=text, text_pair=text_pair, max_length=max_seq_length, truncation=True)
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
