"""Which of the query's keywords a hit matches, and where in its title (what the page highlights).

A query is keywords separated by spaces (CSL's and the sample's queries are; a person types them so). A keyword
matches a paper when its title contains it (case-insensitive, full-width forms folded) or when it equals one of
the paper's own keywords; a keyword that does not match whole (a typed phrase, "中西方语言与文化的差异") matches by
its jieba words of two or more characters. Nothing here changes a score: it explains what the ranking saw.
"""

import unicodedata


def _fold(text):
    """Case and width folded (ＣＮＮ = CNN = cnn), one character for one: positions in the fold are positions in text."""
    folded = "".join(unicodedata.normalize("NFKC", ch).lower()[:1] or ch for ch in text)
    return folded if len(folded) == len(text) else text.lower()


def query_keywords(query):
    """The query's distinct keywords in order (split on whitespace)."""
    seen = []
    for word in query.split():
        if _fold(word) not in (_fold(w) for w in seen):
            seen.append(word)
    return seen


def query_terms(query):
    """[(keyword, its fold, its jieba words of two or more characters)] of a query, computed once for all its hits."""
    from search.features import jieba_words

    terms = []
    for word in query_keywords(query):
        folded = _fold(word)
        parts = [w for w in dict.fromkeys(jieba_words(word)) if len(w) >= 2 and w != folded] if len(word) > 2 else []
        terms.append((word, folded, parts))
    return terms


def matched_keywords(query, title, keywords=(), terms=None):
    """The query keywords the paper matches: contained in its title, or one of its own keywords; for a keyword that
    does not, its words (jieba) the title contains. terms: query_terms(query) when already computed."""
    folded_title = _fold(title)
    own = {_fold(k) for k in keywords}
    matched = []
    for word, folded, parts in terms if terms is not None else query_terms(query):
        if folded in folded_title or folded in own:
            matched.append(word)
        else:
            matched.extend(w for w in parts if w in folded_title and w not in matched)
    return matched


def highlight_spans(words, title):
    """[[start, end], ...] character ranges of title that the words cover (every occurrence), sorted and merged."""
    folded = _fold(title)
    spans = []
    for word in words:
        needle, start = _fold(word), 0
        while needle and (found := folded.find(needle, start)) >= 0:
            spans.append([found, found + len(needle)])
            start = found + 1
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def annotate(query, hits):
    """Sets hit.matched on every hit (recall.milvus.search.Hit) of query; returns the hits."""
    terms = query_terms(query)
    for hit in hits:
        hit.matched = matched_keywords(query, hit.text, hit.fields.get("keywords", ()), terms)
    return hits
