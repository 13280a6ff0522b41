"""Builds an ERNIE-style vocabulary from a corpus: special tokens, Chinese characters and punctuation,
frequent latin/digit words, and every latin/digit character as a word-initial and a '##' piece so that
WordPiece can spell any word."""

import collections

SPECIAL_TOKENS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]


def basic_tokenizer():
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    return BasicTokenizer(do_lower_case=True)


def _is_latin_or_digit(token):
    return all(ch.isascii() and ch.isalnum() for ch in token)


def build_vocab(texts, min_freq=2, max_size=None):
    """Returns the token list (index = id). Single characters are kept from min_freq 1 so the
    vocabulary covers the corpus; latin/digit words need min_freq occurrences."""
    splitter = basic_tokenizer()
    counts = collections.Counter()
    for text in texts:
        counts.update(splitter.tokenize(text))

    singles = collections.Counter()
    words = collections.Counter()
    pieces = set()
    for token, n in counts.items():
        if len(token) == 1:
            singles[token] += n
        elif _is_latin_or_digit(token):
            words[token] += n
            for ch in token:
                singles[ch] += n
                pieces.add("##" + ch)
        else:  # a run of symbols BasicTokenizer kept together: spell it by characters
            for ch in token:
                singles[ch] += n

    vocab = list(SPECIAL_TOKENS)
    vocab += [t for t, _ in sorted(singles.items(), key=lambda kv: (-kv[1], kv[0]))]
    vocab += sorted(pieces)
    vocab += [t for t, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]
    if max_size is not None and len(vocab) > max_size:
        # drop the rarest multi-character words first: characters and pieces keep coverage
        vocab = vocab[:max_size]
    seen = set()
    return [t for t in vocab if not (t in seen or seen.add(t))]


def write_vocab(vocab, path):
    with open(path, "w", encoding="utf-8") as f:
        for token in vocab:
            f.write(token + "\n")
