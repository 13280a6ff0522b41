"""The data layer: the bundled sample, CSL conversion, the ns_common.io readers' bad-input rules,
BM25 negatives, the download script's offline path, vocabulary/tokenizer and bootstrap models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ns_common.bm25 import BM25Index, char_ngrams, lexical_negatives
from ns_common.io import (
    DataFileError,
    SkipCounter,
    read_corpus,
    read_jsonl,
    read_pairwise_labeled,
    read_pairwise_train,
    read_text_pairs,
    read_texts,
    write_lines,
)
from ns_common.records import parse_record

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
CSL_DIR = os.path.join(REPO, "..", "shared", "data", "csl")
PYTHON = sys.executable

sys.path.insert(0, os.path.join(REPO, "data"))
import make_sample  # noqa: E402
import prepare_csl  # noqa: E402
from layout import LAYOUT_FILES  # noqa: E402


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def load_layout(root):
    """Every file of a layout through the project's readers."""
    return {
        "corpus": read_corpus(os.path.join(root, "recall/corpus.csv")),
        "milvus": read_corpus(os.path.join(root, "milvus/milvus_data.csv")),
        "train": list(read_text_pairs(os.path.join(root, "recall/train.csv"))),
        "dev": list(read_text_pairs(os.path.join(root, "recall/dev.csv"))),
        "test": list(read_text_pairs(os.path.join(root, "recall/test.csv"))),
        "unsup": list(read_texts(os.path.join(root, "recall/train_unsupervised.csv"))),
        "sort_train": list(read_pairwise_train(os.path.join(root, "sort/train_pairwise.csv"))),
        "sort_dev": list(read_pairwise_labeled(os.path.join(root, "sort/dev_pairwise.csv"))),
        "sort_test": list(read_pairwise_labeled(os.path.join(root, "sort/test_pairwise.csv"))),
        "pretrain": list(read_texts(os.path.join(root, "pretrain/domain_corpus.txt"))),
    }


def read_records(root):
    """The paper records of a layout (milvus/papers.jsonl), one a line; a malformed one fails the test."""
    with open(os.path.join(root, "milvus", "papers.jsonl"), encoding="utf-8") as f:
        return [parse_record(line) for line in f]


def check_layout_consistency(d):
    """What every layout must satisfy, sample or CSL."""
    corpus = set(d["corpus"])
    assert d["milvus"] == d["corpus"], "milvus_data.csv and corpus.csv must be the same titles in the same order"
    assert len(corpus) == len(d["corpus"]) and "" not in corpus, "corpus titles are unique and non-empty"
    train_q, dev_q = {q for q, _ in d["train"]}, {q for q, _ in d["dev"]}
    train_t, dev_t = {t for _, t in d["train"]}, {t for _, t in d["dev"]}
    assert not train_q & dev_q and not train_t & dev_t, "train and dev share a query or a title"
    assert len(train_q) == len(d["train"]) and len(dev_q) == len(d["dev"]), "a query repeats within a split"
    assert dev_t <= corpus and train_t <= corpus, "a labelled title is missing from the corpus"
    # test.csv: each dev pair, then the same query with another title
    assert d["test"][0::2] == d["dev"] and len(d["test"]) == 2 * len(d["dev"])
    assert all(neg != pos and neg in corpus for (_, pos), (_, neg) in zip(d["test"][0::2], d["test"][1::2]))
    gold = dict(d["train"] + d["dev"])
    for q, t, neg in d["sort_train"]:
        assert q in train_q and gold[q] == t and neg != t and neg in corpus
    sort_dev_q = {q for q, _, _ in d["sort_dev"]}
    sort_test_q = {q for q, _, _ in d["sort_test"]}
    assert sort_dev_q | sort_test_q == dev_q and not sort_dev_q & sort_test_q
    for q, t, label in d["sort_dev"] + d["sort_test"]:
        assert (t == gold[q]) == (label == 1) and t in corpus


# ---------------------------------------------------------------- the bundled sample


def test_sample_has_every_file_with_expected_counts():
    for rel in LAYOUT_FILES:
        assert os.path.isfile(os.path.join(SAMPLE, rel)), f"data/sample/{rel} missing"
    d = load_layout(SAMPLE)
    assert len(d["corpus"]) == 500
    assert (len(d["train"]), len(d["dev"])) == (240, 60)
    assert len(d["unsup"]) == 1000  # 500 titles + 500 abstracts
    assert len(d["pretrain"]) == 500
    assert len(d["sort_train"]) == 240 * 4
    assert len(d["sort_dev"]) + len(d["sort_test"]) == 60 * 5  # gold + 4 negatives per dev query
    check_layout_consistency(d)
    total = sum(os.path.getsize(os.path.join(SAMPLE, rel)) for rel in LAYOUT_FILES)
    assert total < 1_000_000


def test_sample_queries_look_like_csl():
    d = load_layout(SAMPLE)
    pairs = d["train"] + d["dev"]
    for query, title in pairs:
        keywords = query.split(" ")
        assert 3 <= len(keywords) <= 5
        assert any(k not in title for k in keywords), f"every keyword of {query!r} is in its title"
        assert any(k in title for k in keywords), f"no keyword of {query!r} is in its title"
    latin = [t for t in d["corpus"] if any(w in t for w in ("CNN", "LSTM", "BERT", "GPS", "DNA", "PM2.5"))]
    assert len(latin) >= 10
    # pretraining documents have several sentences for the sentence-order objective
    assert min(doc.count("。") for doc in d["pretrain"]) >= 4


def test_make_sample_is_deterministic(tmp_path, capsys):
    make_sample.main(["--output_dir", str(tmp_path)])
    for rel in LAYOUT_FILES:
        with open(tmp_path / rel, "rb") as a, open(os.path.join(SAMPLE, rel), "rb") as b:
            assert a.read() == b.read(), f"data/sample/{rel} differs from what make_sample.py writes: rerun it"
    assert "500 papers" in capsys.readouterr().out


def test_make_sample_writes_the_corpus_as_records_with_category_and_year(tmp_path, capsys):
    make_sample.main(["--output_dir", str(tmp_path)])
    records = read_records(tmp_path)
    assert [r.title for r in records] == read_corpus(str(tmp_path / "milvus" / "milvus_data.csv"))  # line for line
    assert all(r.category and 2005 <= r.year <= 2024 for r in records)
    assert all(r.keywords and r.abstract and r.paper_id for r in records)
    assert len({r.paper_id for r in records}) == len(records)
    assert len({r.category for r in records}) == len(make_sample.FIELDS)


def test_bm25_ranks_the_gold_title_and_negatives_avoid_it():
    titles = lines(os.path.join(SAMPLE, "recall/corpus.csv"))
    dev = lines(os.path.join(SAMPLE, "recall/dev.csv"))
    queries = [x.split("\t")[0] for x in dev]
    gold = [titles.index(x.split("\t")[1]) for x in dev]
    index = BM25Index(titles)
    hits, scores = index.search(queries, k=10)
    assert hits.shape == scores.shape == (len(dev), 10)
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must come best first"
    recall_at_10 = np.mean([g in row for g, row in zip(gold, hits)])
    assert recall_at_10 > 0.9  # keyword overlap is strong on this task, as on CSL
    negs = lexical_negatives(index, queries, gold, n_neg=4, pool=10, seed=1)
    assert all(len(n) == 4 == len(set(n)) and g not in n for n, g in zip(negs, gold))
    # unknown characters only, and k above the corpus size: no crash
    hits, _ = BM25Index(["甲乙", "丙丁"]).search(["xyz"], k=5)
    assert hits.shape == (1, 2)
    assert char_ngrams("图像 识别") == ["图", "像", "图像", "识", "别", "识别"]


# ---------------------------------------------------------------- ns_common.io bad-input rules


def write_bytes(path, chunks):
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
    return str(path)


def test_read_text_pairs_skips_and_counts_bad_lines(tmp_path, caplog):
    path = write_bytes(
        tmp_path / "train.csv",
        [
            "图像识别 CNN\t基于CNN的图像识别研究\n",  # 1 kept
            "只有一个字段\n",  # 2 wrong number of fields
            "查询\t标题\t多余\n",  # 3 wrong number of fields
            "查询\t   \n",  # 4 empty text
            b"\xff\xfe\xfa\t\xe4\xb8\n",  # 5 invalid UTF-8
            "图像识别 CNN\t另一个标题\n",  # 6 duplicate query
            "\n",  # 7 empty line
            "文本分类 BERT\t基于BERT的文本分类\r\n",  # 8 kept (CRLF)
        ],
    )
    counter = SkipCounter(path)
    pairs = list(read_text_pairs(path, unique_query=True, counter=counter))
    assert pairs == [("图像识别 CNN", "基于CNN的图像识别研究"), ("文本分类 BERT", "基于BERT的文本分类")]
    assert counter.kept == 2 and counter.n_skipped == 6
    assert counter.skipped["lines without exactly 2 tab-separated fields"] == [2, 3]
    assert counter.skipped["empty text"] == [4]
    assert counter.skipped["invalid UTF-8"] == [5]
    assert counter.skipped["duplicates"] == [6]
    assert counter.skipped["empty line"] == [7]
    # without a counter of its own the reader warns once, naming the file and the lines
    caplog.clear()
    assert len(list(read_text_pairs(path))) == 3  # duplicates allowed here
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and path in warnings[0] and "line 2, 3" in warnings[0]


def test_read_texts_and_corpus_keep_positions(tmp_path):
    path = write_bytes(tmp_path / "corpus.csv", ["\ufeff第一篇\n", "\n", b"\xc3\x28\n", "第四篇\n"])
    assert list(read_texts(path)) == ["第一篇", "第四篇"]
    # a corpus keeps every line so that line number = doc id
    assert read_corpus(path) == ["第一篇", "", "", "第四篇"]


def test_pairwise_readers(tmp_path):
    train = write_bytes(
        tmp_path / "train_pairwise.csv", ["query\ttitle\tneg_title\n", "q1\tt1\tn1\n", "q2\tt2\n", "q3\t\tn3\n"]
    )
    assert list(read_pairwise_train(train)) == [("q1", "t1", "n1")]
    labelled = write_bytes(
        tmp_path / "dev_pairwise.csv",
        ["query\ttitle\tlabel\n", "q1\tt1\t1\n", "q1\tn1\t0\n", "q1\tn2\t2\n", "q1\tn3\tyes\n"],
    )
    assert list(read_pairwise_labeled(labelled)) == [("q1", "t1", 1), ("q1", "n1", 0)]
    bad_header = write_bytes(tmp_path / "bad.csv", ["query\ttitle\tlabels\n", "q\tt\t1\n"])
    with pytest.raises(DataFileError, match="expected header"):
        list(read_pairwise_labeled(bad_header))


def test_read_jsonl_and_missing_files(tmp_path):
    path = write_bytes(
        tmp_path / "papers.jsonl",
        [
            json.dumps({"title": "甲", "keywords": ["a"]}, ensure_ascii=False) + "\n",
            "{not json\n",
            json.dumps({"abstract": "no title"}) + "\n",
            b'{"title": "\xff"}\n',
            "\n",
            json.dumps({"title": "乙"}, ensure_ascii=False) + "\n",
        ],
    )
    counter = SkipCounter(path)
    assert [o["title"] for o in read_jsonl(path, required=("title",), counter=counter)] == ["甲", "乙"]
    assert counter.skipped == {"invalid JSON": [2], "missing field 'title'": [3], "invalid UTF-8": [4]}
    missing = str(tmp_path / "nope.csv")
    for reader in (read_texts, read_text_pairs, read_pairwise_train, read_jsonl):
        with pytest.raises(DataFileError, match="nope.csv"):
            list(reader(missing))
    with pytest.raises(DataFileError, match="nope.csv"):
        read_corpus(missing)


def test_write_lines_round_trip(tmp_path):
    path = str(tmp_path / "out" / "pairs.csv")
    assert write_lines(path, [("查询\t带制表符", "标题\n换行"), ("q", "t")]) == 2
    assert list(read_text_pairs(path)) == [("查询 带制表符", "标题 换行"), ("q", "t")]


# ---------------------------------------------------------------- prepare_csl.py


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")


def tiny_csl(root, n_dev=10, n_train=20):
    """A made-up CSL-shaped folder (not CSL text) with a few broken records."""
    fields = [
        "图像识别",
        "文本分类",
        "水稻产量",
        "土壤修复",
        "齿轮故障",
        "教学评价",
        "金融风险",
        "心理健康",
        "催化剂",
        "合同纠纷",
    ]
    papers = []
    for i in range(n_dev):
        f = fields[i % len(fields)]
        papers.append(
            {
                "id": f"csl-dev-{i}",
                "split": "dev",
                "title": f"{f}方法研究第{i}号",
                "abstract": f"本文研究{f}问题.结果表明方法有效.",
                "keywords": [f, f"方法{i}", "研究"],
            }
        )
    for i in range(n_train):
        papers.append(
            {
                "id": f"csl-train-{i}",
                "split": "train",
                "title": f"{fields[i % 10]}的应用综述{i}",
                "abstract": "",
                "keywords": [],
            }
        )
    os.makedirs(root, exist_ok=True)
    write_jsonl(
        os.path.join(root, "papers.jsonl"),
        papers
        + [
            "{broken json",
            {"id": "x", "split": "dev", "abstract": "缺少标题"},
            {"id": "y", "split": "dev", "title": "  ", "keywords": ["空标题"]},
            papers[0],  # a duplicate paper: its title and query appear once in the output
        ],
    )
    write_jsonl(
        os.path.join(root, "abstracts.jsonl"),
        [
            {"id": "fewclue-0", "abstract": "另一篇论文的摘要.含有两个句子.", "keywords": ["摘要"]},
            {"id": "fewclue-1", "abstract": ""},
            {"id": "fewclue-2"},
        ],
    )
    return root


def test_prepare_csl_jsonl_with_bad_records(tmp_path, capsys):
    src = tiny_csl(str(tmp_path / "csl"))
    out = str(tmp_path / "layout")
    prepare_csl.main(
        ["--csl_dir", src, "--output_dir", out, "--dev_ratio", "0.3", "--neg_per_query", "2", "--neg_pool", "3"]
    )
    summary = capsys.readouterr().out
    assert "30 papers read, 10 with keywords" in summary  # 30 good; the duplicate id and the 3 broken ones skipped
    d = load_layout(out)
    check_layout_consistency(d)
    assert len(d["corpus"]) == 30
    assert (len(d["train"]), len(d["dev"])) == (7, 3)
    assert len(d["sort_train"]) == 7 * 2
    assert len(d["unsup"]) == 30 + 10 + 1  # titles + dev abstracts + the one non-empty extra abstract
    assert len(d["pretrain"]) == 31
    # CSL's ASCII sentence ends become 。 so the pretraining sentence splitter sees them; a labelled
    # paper's keywords stay out of the pretraining text (they would leak its query-title pair)
    assert d["pretrain"][0] == "图像识别方法研究第0号。本文研究图像识别问题。结果表明方法有效。"
    assert not any("关键词：图像识别" in doc for doc in d["pretrain"])
    # same seed -> same split; an existing layout is not overwritten by accident
    with pytest.raises(SystemExit) as exc:
        prepare_csl.main(["--csl_dir", src, "--output_dir", out])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    prepare_csl.main(
        [
            "--csl_dir",
            src,
            "--output_dir",
            out,
            "--dev_ratio",
            "0.3",
            "--neg_per_query",
            "2",
            "--neg_pool",
            "3",
            "--overwrite",
        ]
    )
    assert load_layout(out)["dev"] == d["dev"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--csl_dir", "/no/such/dir", "--output_dir", "X"], "folder not found"),
        (["--csl_dir", "MISSING_FILE", "--output_dir", "X"], "abstracts.jsonl"),
        (["--csl_dir", "SRC", "--output_dir", "X", "--dev_ratio", "1.5"], "--dev_ratio"),
        (["--output_dir", "X"], "one of the arguments --csl_dir --csl_tsv_dir is required"),
    ],
)
def test_prepare_csl_fails_with_one_clear_line(tmp_path, capsys, argv, message):
    src = tiny_csl(str(tmp_path / "csl"))
    missing = str(tmp_path / "only_papers")
    os.makedirs(missing)
    os.rename(os.path.join(src, "papers.jsonl"), os.path.join(missing, "papers.jsonl"))
    argv = [{"SRC": src, "MISSING_FILE": missing, "X": str(tmp_path / "out")}.get(a, a) for a in argv]
    with pytest.raises(SystemExit) as exc:
        prepare_csl.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out" / "recall"), "nothing may be written on bad input"


def test_prepare_csl_from_benchmark_tsv(tmp_path, capsys):
    bench = tmp_path / "benchmark"
    for task in ("ts", "kg", "cls_ctg", "cls_dcp"):
        (bench / task).mkdir(parents=True)
    papers = [
        (f"第{i}篇论文的摘要.提出了新方法{i}.", f"新方法{i}在水稻育种中的应用", [f"新方法{i}", "水稻", "育种"])
        for i in range(8)
    ]
    with open(bench / "ts/dev.tsv", "w", encoding="utf-8") as f:
        for abstract, title, _ in papers:
            f.write(f"to title\t{abstract}\t{title}\n")
    with open(bench / "kg/dev.tsv", "w", encoding="utf-8") as f:
        for abstract, title, kws in reversed(papers):  # another order: matched by text, not line number
            f.write(f"to keywords\t{abstract} {title}\t{'_'.join(kws)}\n")
        f.write("to keywords\t不属于任何论文的摘要 无标题\t孤立_关键词\n")
        f.write("broken line without tabs\n")
    with open(bench / "cls_ctg/train.tsv", "w", encoding="utf-8") as f:
        for i in range(12):
            f.write(f"to category\t玉米栽培技术综述{i}\t农学\n")
        f.write(f"to category\t{papers[0][1]}\t农学\n")  # a title also in ts: counted once
    with open(bench / "cls_dcp/dev.tsv", "w", encoding="utf-8") as f:
        f.write(f"to discipline\t{papers[0][0]}\t作物学\n")  # same abstract as ts: not repeated
        f.write("to discipline\t一篇只有摘要的论文.\t作物学\n")
    out = str(tmp_path / "layout")
    prepare_csl.main(["--csl_tsv_dir", str(bench), "--output_dir", out, "--dev_ratio", "0.25", "--neg_per_query", "2"])
    d = load_layout(out)
    check_layout_consistency(d)
    assert len(d["corpus"]) == 20
    assert (len(d["train"]), len(d["dev"])) == (6, 2)
    assert dict(d["train"] + d["dev"])["新方法3 水稻 育种"] == "新方法3在水稻育种中的应用"
    assert len(d["unsup"]) == 20 + 8 + 1
    records = {r.title: r for r in read_records(out)}
    assert list(records) == d["milvus"]  # the same titles, line for line
    assert records[papers[0][1]].category == "农学" and records[papers[0][1]].keywords == ("新方法0", "水稻", "育种")
    assert records[papers[1][1]].category == ""  # in ts only: no category known
    assert all(records[f"玉米栽培技术综述{i}"].category == "农学" for i in range(12))


@pytest.mark.skipif(not os.path.isdir(CSL_DIR), reason="CSL not found at ../shared/data/csl (licence: not bundled)")
def test_prepare_csl_on_real_csl(tmp_path, capsys):
    out = str(tmp_path / "csl")
    prepare_csl.main(["--csl_dir", CSL_DIR, "--output_dir", out])
    d = load_layout(out)
    check_layout_consistency(d)
    assert 8900 <= len(d["corpus"]) <= 9000
    assert 950 <= len(d["train"]) + len(d["dev"]) <= 1000
    assert abs(len(d["dev"]) - 0.2 * (len(d["train"]) + len(d["dev"]))) <= 1
    assert 18_000 <= len(d["unsup"]) <= 21_000
    assert 18_000 <= len(d["pretrain"]) <= 20_000
    assert len(d["sort_train"]) == 4 * len(d["train"])
    assert "papers read" in capsys.readouterr().out
    records = read_records(out)
    assert [r.title for r in records] == d["milvus"]  # the same titles, line for line
    assert all(r.category for r in records) and all(r.paper_id.startswith("csl-") for r in records)
    by_title = {r.title: r for r in records}
    for _, title in d["train"] + d["dev"]:  # the labelled papers: keywords and a discipline
        assert by_title[title].keywords and by_title[title].discipline, title


# ---------------------------------------------------------------- download script


def test_download_script_offline_message(tmp_path):
    env = dict(os.environ, DATA_URL="https://no-such-host.invalid/literature_search_data.zip", CONNECT_TIMEOUT="2")
    result = subprocess.run(
        ["bash", os.path.join(REPO, "data", "download_data.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "could not download https://no-such-host.invalid" in result.stderr
    assert "data/sample" in result.stderr
    assert not any(n.startswith("literature_search_data.zip") for n in os.listdir(os.path.join(REPO, "data")))


# ---------------------------------------------------------------- vocabulary, tokenizer, bootstrap


@pytest.fixture(scope="module")
def bootstrap_dirs(tmp_path_factory):
    """Both architectures, mini preset, vocabulary from the sample's unsupervised texts."""
    from ns_common import bootstrap

    root = str(tmp_path_factory.mktemp("bootstrap"))
    bootstrap.main(
        [
            "--corpus_files",
            os.path.join(SAMPLE, "recall/train_unsupervised.csv"),
            os.path.join(SAMPLE, "recall/train.csv"),
            "--model_type",
            "both",
            "--preset",
            "mini",
            "--save_dir",
            root,
        ]
    )
    return {m: os.path.join(root, m) for m in ("ernie", "ernie-gram")}


def test_vocab_and_tokenizer_round_trip(bootstrap_dirs):
    from ns_common.modeling import load_tokenizer

    for model_type, path in bootstrap_dirs.items():
        tokenizer = load_tokenizer(path)
        vocab = lines(os.path.join(path, "vocab.txt"))
        assert vocab[:5] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] and len(vocab) == len(set(vocab))
        text = "基于卷积神经网络的图像识别研究"
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        tokens = tokenizer.convert_ids_to_tokens(ids[1:-1])
        assert "".join(tokens) == text, f"{model_type}: characters do not come back"
        assert tokenizer.unk_token not in tokens
        # a latin word is lower-cased and spelled by pieces of the vocabulary, never [UNK]
        for word in ("LSTM", "bertgps", "cnnlstm"):
            pieces = tokenizer.tokenize(word)
            assert tokenizer.unk_token not in pieces
            assert "".join(p[2:] if p.startswith("##") else p for p in pieces) == word.lower()
            assert all(p.startswith("##") for p in pieces[1:])
        assert tokenizer.tokenize("龘") == [tokenizer.unk_token]  # a character the corpus never had


def test_bootstrap_save_load_forward(bootstrap_dirs):
    import paddle

    from ns_common.modeling import load_backbone, load_tokenizer, model_type_of
    from ns_common.text import batch_encode

    for model_type, path in bootstrap_dirs.items():
        assert model_type_of(path) == model_type
        with open(os.path.join(path, "bootstrap.json"), encoding="utf-8") as f:
            info = json.load(f)
        assert info["model_type"] == model_type and info["pretrained"] is False
        tokenizer = load_tokenizer(path)
        input_ids, token_type_ids = batch_encode(
            ["基于CNN的图像识别研究", "水稻 干旱胁迫"], tokenizer, max_seq_length=32
        )
        outputs = []
        for _ in range(2):  # two loads give the same outputs: the weights come from the files
            model = load_backbone(path)
            model.eval()
            assert model.config.vocab_size == info["vocab_size"] == len(tokenizer.vocab)
            with paddle.no_grad():
                sequence, pooled = model(paddle.to_tensor(input_ids), token_type_ids=paddle.to_tensor(token_type_ids))
            assert sequence.shape == [2, input_ids.shape[1], 128] and pooled.shape == [2, 128]
            assert np.isfinite(sequence.numpy()).all()
            outputs.append(pooled.numpy())
        np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "command",
    [
        [PYTHON, os.path.join(REPO, "data", "prepare_csl.py"), "--help"],
        [PYTHON, os.path.join(REPO, "data", "make_sample.py"), "--help"],
        [PYTHON, "-m", "ns_common.bootstrap", "--help"],
    ],
)
def test_help(command):
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--output_dir" in result.stdout or "--save_dir" in result.stdout


def test_domain_corpus_does_not_leak_labelled_pairs():
    """Pretraining text must not pair a dev query's keywords with its gold title."""
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "sample")
    with open(os.path.join(root, "pretrain", "domain_corpus.txt"), encoding="utf-8") as f:
        docs = f.read().splitlines()
    with open(os.path.join(root, "recall", "dev.csv"), encoding="utf-8") as f:
        pairs = [line.rstrip("\n").split("\t") for line in f]
    assert docs and pairs
    for query, title in pairs:
        for doc in (d for d in docs if d.startswith(title)):
            assert "，".join(query.split()) not in doc and "关键词" not in doc


def test_split_train_folds_cover_every_query_once_and_keep_the_fit_part(tmp_path, capsys):
    """--folds 4: train_fit.csv is the same quarter --fit_ratio 0.25 holds out; each other fold's held-out queries
    are disjoint from the rest, together with the fit part they are every training query once, and each fold's
    training file is every pair but its held-out queries'."""
    import split_train

    train = os.path.join(SAMPLE, "recall", "train.csv")
    split_train.main(["--train_file", train, "--output_dir", str(tmp_path / "plain")])
    split_train.main(["--train_file", train, "--output_dir", str(tmp_path / "folds"), "--folds", "4"])
    folds = tmp_path / "folds"
    for name in ("train_fit.csv", "train_model.csv"):
        assert (folds / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    pairs = list(read_text_pairs(train))
    queries = {q for q, _ in pairs}
    held = [{q for q, _ in read_text_pairs(str(folds / "train_fit.csv"))}]
    for i in (1, 2, 3):
        heldout = list(read_text_pairs(str(folds / f"fold{i}_heldout.csv")))
        held.append({q for q, _ in heldout})
        assert sorted(read_text_pairs(str(folds / f"fold{i}_train.csv"))) == sorted(
            p for p in pairs if p[0] not in held[-1]
        )
    assert sum(len(h) for h in held) == len(queries) and set().union(*held) == queries
    assert max(len(h) for h in held) - min(len(h) for h in held) <= 1
    with pytest.raises(SystemExit):
        split_train.main(["--train_file", train, "--output_dir", str(tmp_path / "one"), "--folds", "1"])
