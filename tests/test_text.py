"""The fast tokenisation path (ns_common.text.FastWordPiece) gives exactly the tokenizer's own ids: on every
text of the bundled sample, on CSL's titles and queries (when ../shared/data/csl is present), and on strings
made to hit the cases where it must hand the text to the real tokenizer."""

import json
import os

import pytest
from conftest import REPO, SAMPLE, make_tiny_model

from ns_common.modeling import load_tokenizer
from ns_common.text import FastWordPiece, batch_encode, token_ids
from ns_common.vocab import build_vocab

CSL_PAPERS = os.path.join(REPO, "..", "shared", "data", "csl", "papers.jsonl")
# each must give the real tokenizer's ids: other scripts, accents, control characters, a special token
# written in the text, full-width letters, a word over WordPiece's 100-character limit, symbols, blanks
TRICKY = [
    "ΑΣ σ ς",
    "[SEP] 文本 [CLS]",
    "中\u0301文",
    "a\x1fb\x00c",
    "Ａｂｃ１２３ 全角",
    "naïve café Ünïcödé",
    "x≠y ≤ 3",
    "α-β 合金 γ射线",
    "ﬁle ligature",
    "中文\u3000全角空格",
    "E=mc² 〇一",
    "丂\uf900\U00020000",
    "a" * 150,
    "",
    "   ",
    "C++ / Java；Python：3.11（测试）",
    "Hello,World!!",
    "😀 表情",
    "tab\there\nnewline\r",
    "MiXeD CaSe WORDS 123abc",
    "[unused1] [MASK]",
    "\ufeff零宽",
    "ab" + "\u200b" + "cd",
]


def texts_of_the_sample():
    texts = []
    for folder, _, files in os.walk(SAMPLE):
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                texts += [field for line in f for field in line.rstrip("\n").split("\t") if field]
    return texts


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """ERNIE and ERNIE-Gram tokenizers whose vocabulary comes from the sample (plus the tricky strings' pieces)."""
    root = tmp_path_factory.mktemp("fast_wordpiece")
    vocab = build_vocab(texts_of_the_sample() + TRICKY, min_freq=1)
    return [load_tokenizer(make_tiny_model(str(root / kind), kind, vocab=vocab)) for kind in ("ernie", "ernie-gram")]


def test_same_ids_as_the_tokenizer_on_the_sample_and_tricky_strings(tokenizers):
    texts = texts_of_the_sample() + TRICKY
    for tokenizer in tokenizers:
        fast = FastWordPiece.of(tokenizer)
        assert fast.enabled
        assert [fast.ids(t) for t in texts] == [fast.slow_ids(t) for t in texts]
        # the sample's titles take the fast path (or nothing is gained), the tricky strings mostly do not
        covered = sum(bool(fast.covered.fullmatch(t)) for t in texts_of_the_sample())
        assert covered >= 0.9 * len(texts_of_the_sample())
        # what the fast path cannot split by itself goes to the real tokenizer whole
        for text in ("ΑΣ σ ς", "中\u0301文", "a\x1fb\x00c", "Ａｂｃ１２３ 全角", "naïve café", "E=mc² 〇一", "ﬁle"):
            assert not fast.covered.fullmatch(text), text
        assert all(any(s in text for s in fast.specials) for text in ("[SEP] 文本 [CLS]", "[unused1] [MASK]"))


def test_same_ids_on_csl(tmp_path):
    if not os.path.isfile(CSL_PAPERS):
        pytest.skip(f"CSL is not at {CSL_PAPERS} (it may not be redistributed): the sample test covers the fast path")
    with open(CSL_PAPERS, encoding="utf-8") as f:
        papers = [json.loads(line) for line in f]
    texts = [p["title"] for p in papers] + [" ".join(p.get("keywords") or []) for p in papers]
    tokenizer = load_tokenizer(
        make_tiny_model(str(tmp_path / "csl"), "ernie", vocab=build_vocab(texts[:20000], min_freq=1))
    )
    fast = FastWordPiece.of(tokenizer)
    mismatches = [t for t in texts if fast.ids(t) != fast.slow_ids(t)]
    assert not mismatches, mismatches[:3]
    assert sum(bool(fast.covered.fullmatch(t)) for t in texts) >= 0.9 * len(texts)


def test_the_shared_encoders_use_it_and_keep_their_output(tokenizers):
    tokenizer = tokenizers[0]
    title = "基于深度学习的图像识别方法研究 (CNN, ResNet-50)"
    assert token_ids(tokenizer, title, 64) == tokenizer.convert_tokens_to_ids(tokenizer.tokenize(title))
    input_ids, token_type_ids = batch_encode([title, "短标题"], tokenizer, 64, ["查询 词", "另一个"])
    expected = tokenizer(title, text_pair="查询 词", max_length=64)["input_ids"]
    assert list(input_ids[0][: len(expected)]) == expected and token_type_ids.shape == input_ids.shape
