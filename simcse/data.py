"""SimCSE data: one text a line (recall/train_unsupervised.csv). A batch is tokenised once and encoded
twice by the model: dropout makes the two views differ, and with --dup_rate > 0 also word repetition
(ESimCSE, PaddleNLP's --dup_rate), which gives the two views different lengths so that length stops
being a shortcut for telling texts apart."""

import random

from ns_common.contrastive import false_negative_mask
from ns_common.io import read_texts
from ns_common.text import convert_example, pad_sequences, with_role


def read_simcse_texts(path):
    """Every non-empty line is a training text (malformed lines are skipped and counted)."""
    return list(read_texts(path))


def word_repetition(input_ids, dup_rate, rng, max_seq_length):
    """Repeats up to dup_rate of the tokens between [CLS] and [SEP] in place (at least 2 may be drawn)."""
    inner = input_ids[1:-1]
    if dup_rate <= 0 or len(inner) < 2:
        return list(input_ids)
    n_dup = rng.randint(0, max(2, int(dup_rate * len(inner))))
    repeated = set(rng.sample(range(len(inner)), min(n_dup, len(inner))))
    out = [input_ids[0]]
    for i, token in enumerate(inner):
        out += [token, token] if i in repeated else [token]
    return out[: max_seq_length - 1] + [input_ids[-1]]


def keyword_view(text, rng, max_chars=64, min_words=2, max_words=5):
    """A pseudo-query: 2-5 distinct words (jieba, 2+ characters) drawn from the start of the text (the part
    the encoder sees), joined by spaces like a literature-search keyword query. The text itself when it has
    fewer than 2 such words."""
    import jieba

    words = list(
        dict.fromkeys(w for w in jieba.lcut(text[:max_chars]) if len(w.strip()) >= 2 and any(c.isalnum() for c in w))
    )
    if len(words) < min_words:
        return text
    return " ".join(rng.sample(words, rng.randint(min_words, min(max_words, len(words)))))


class SimCSECollator:
    """second_view: "dropout" (SimCSE: the same tokens twice) or "keywords" (the second view is a
    keyword_view of the text: an unsupervised stand-in for the query -> title task)."""

    def __init__(self, tokenizer, max_seq_length=64, dup_rate=0.0, seed=1000, second_view="dropout"):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.dup_rate = dup_rate
        self.second_view = second_view
        self.rng = random.Random(seed)

    def __call__(self, texts):
        # a model trained with prefixes (ns_common.text.with_role) reads the text as a document, its keyword view as
        # the query that would find it
        docs = with_role(texts, self.tokenizer, "doc")
        ids = [convert_example(t, self.tokenizer, self.max_seq_length)[0] for t in docs]
        pad = self.tokenizer.pad_token_id
        batch = {}
        if self.second_view == "keywords":
            views = with_role([keyword_view(t, self.rng, self.max_seq_length) for t in texts], self.tokenizer, "query")
            second = [convert_example(v, self.tokenizer, self.max_seq_length)[0] for v in views]
        elif self.dup_rate > 0:
            ids, second = (
                [word_repetition(x, self.dup_rate, self.rng, self.max_seq_length) for x in ids] for _ in range(2)
            )
        else:
            second = None
        batch["input_ids"] = pad_sequences(ids, pad)
        if second is not None:
            batch["second_input_ids"] = pad_sequences(second, pad)
        # the same text twice in a batch is not a negative of itself
        batch["false_negative_mask"] = false_negative_mask(texts, texts)
        return batch
