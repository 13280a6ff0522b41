"""search/: the learned ranking fitted by cross-validation (search/fit.py), served by the Python API and query.py
alike, the one-standard-error rule, a neural ranking served with its models and refused with others, and a
ranking of another corpus refused.

Everything is real: the bundled sample's 500 paper records in Milvus Lite (BM25 field + the vectors of a from-scratch
exported recall model), LightGBM models fitted on the sample's training queries: the session's web_index
(tests/conftest.py), shared with tests/test_web_service.py and only read.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import WEB_EMB_SIZE, sample_file

from ns_common.errors import ConfigError, ModelMismatchError

pytestmark = pytest.mark.slow  # a model exported and LightGBM fits (web_index)

EMB = WEB_EMB_SIZE
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def sample(web_index):
    """{"export": an exported recall model, "corpus", "uri": the sample's papers in Milvus Lite, "train", "dev"}: the
    session's web_index (tests/conftest.py), only read here."""
    return {
        "export": web_index["recall_export"],
        "embeddings": os.path.join(web_index["embeddings"], "corpus_embedding.npy"),
        "papers": sample_file("milvus", "papers.jsonl"),  # the same titles as records: the fields to filter on
        "corpus": sample_file("milvus", "milvus_data.csv"),
        "uri": web_index["milvus.db"],
        "train": sample_file("recall", "train.csv"),
        "dev": sample_file("recall", "dev.csv"),
    }


@pytest.fixture(scope="module")
def fitted(web_index):
    """search/fit.py on the sample's training queries (lexical tier only, 3 folds; web_index fitted it on the
    index): its ranking directory and spec."""
    with open(os.path.join(web_index["ranking"], "ranking.json"), encoding="utf-8") as f:
        return web_index["ranking"], json.load(f)


def test_fit_writes_a_ranking_chosen_by_cross_validation(fitted):
    from search import learn

    output, spec = fitted
    assert sorted(os.listdir(output)) == sorted(
        ["ranking.json", "lexical_stats.json"] + (["lexical.txt"] if spec["lexical"] else [])
    )
    with open(os.path.join(output, "ranking.json"), encoding="utf-8") as f:
        assert json.load(f)["chosen"] == spec["chosen"]
    rows = {row["row"]: row for row in spec["cross_validation"]}
    assert rows["BM25 alone"]["queries"] == spec["queries"]["train"] == 240
    assert {"lexical: BM25 signals only", "lexical: every lexical feature"} <= set(rows)
    served = [row for row in spec["cross_validation"] if row["chosen"]]
    assert len(served) == 1
    if spec["chosen"] == "lexical":  # kept only when it beat BM25 by a standard error of the paired gain
        assert served[0]["gain_vs_bm25"] > 0 and served[0]["gain_vs_bm25"] >= served[0]["gain_se"]
        assert set(spec["importance"]["lexical"]) == set(spec["lexical"]["features"])
        assert sum(spec["importance"]["lexical"].values()) == pytest.approx(100, abs=0.1)
    else:
        assert served[0]["row"] == "BM25 alone"
    assert all(0 <= row["R@1"] <= row["R@5"] <= row["R@10"] <= 100 for row in rows.values())
    assert learn.ranking_metrics([1, 2, np.inf])["MRR@10"] == pytest.approx(50.0)


def test_the_cli_and_the_python_api_serve_the_same_ranking(sample, fitted, tmp_path):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher
    from search import query
    from search.system import Ranking, SearchSystem

    output, spec = fitted
    result_file = str(tmp_path / "system.txt")
    metrics = query.main(
        [
            "--ranking_dir",
            output,
            "--uri",
            sample["uri"],
            "--query_file",
            sample["dev"],
            "--recall_num",
            "10",
            "--recall_result_file",
            result_file,
        ]
    )
    assert metrics["queries"] == 60 and metrics["recall@10"] > 50
    with open(sample["dev"], encoding="utf-8") as f:
        first_query = f.readline().split("\t")[0]
    with MilvusSearcher(load_config(uri=sample["uri"])) as searcher:
        system = SearchSystem(searcher, Ranking.load(output))
        hits = system.search(first_query, top_k=10)
        bm25 = searcher.search(first_query, top_k=50, mode="bm25")
        assert {"search", "features", "rank", "total"} <= set(system.timings)
    with open(result_file, encoding="utf-8") as f:
        cli_first = [line.split("\t")[1] for line in f if line.split("\t")[0] == first_query]
    assert cli_first == [h.text for h in hits]
    assert {h.id for h in hits} <= {h.id for h in bm25}  # a reordering of BM25's candidates
    if spec["chosen"] == "bm25":
        assert [h.id for h in hits] == [h.id for h in bm25[:10]]


def test_the_one_standard_error_rule_keeps_only_a_clear_gain():
    """A feature that tells the gold is kept; features of pure noise are not: the baseline is served."""
    from search import learn
    from search.fit import choose

    rng = np.random.default_rng(0)
    labels = [np.eye(20, dtype=np.int32)[rng.integers(20)] for _ in range(60)]
    telling = learn.GroupedData(
        [np.column_stack([y + rng.normal(0, 0.1, 20), rng.random(20)]) for y in labels],
        labels,
        feature_names=["signal", "noise"],
    )
    baseline = learn.baseline_ranks(telling)
    grid = {"n_trees": (20,), "num_leaves": (3,), "learning_rate": (0.1,), "min_child_samples": (5,)}
    winner, rows = choose("t", telling, {"signal": ["signal"]}, grid, "baseline", baseline, baseline, folds=3, seed=1)
    assert winner is not None and winner["name"] == "signal" and learn.ranking_metrics(winner["ranks"])["R@1"] > 90
    assert [row["row"] for row in rows if row["chosen"]] == ["t: signal"]
    noise = telling.select_features(["noise"])
    winner, rows = choose("t", noise, {"noise": ["noise"]}, grid, "baseline", baseline, baseline, folds=3, seed=1)
    assert winner is None and [row["row"] for row in rows if row["chosen"]] == ["baseline"]


@pytest.mark.parametrize(
    "joint, united", [(False, 0), (True, 0), (True, 20)], ids=["stacked", "joint", "joint-united-with-dense-top-20"]
)
def test_a_neural_ranking_is_served_with_its_model_and_refused_with_another(
    sample, fitted, tmp_path, capsys, joint, united
):
    """A ranking whose neural model uses the dense cosine, over the lexical score (stacked) or beside every lexical
    feature (joint), over BM25's candidates or over them united with the dense leg's top 20: SearchSystem computes
    the pool (BM25's 50, then the dense hits whose title BM25 did not find, in the dense order, with a BM25 score of
    0), the cosine of each candidate's stored vector, the lexical features and the model's score exactly as a direct
    computation does; loading it with another recall model (other weights) or serving it without one is a one-line
    error."""
    from ns_common.io import weights_fingerprint
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import Hit, MilvusSearcher, SearchError
    from search import learn
    from search.features import FEATURES, LexicalStats
    from search.fit import read_pairs, write_ranking
    from search.system import Ranking, SearchSystem, SystemClosedError, neural_matrix

    output, spec = fitted
    lexical = Ranking.load(output)
    encoder = TextEncoder(model_dir=sample["export"])
    names = FEATURES + ["cosine", "cosine_rank"] if joint else ["lexical_score", "cosine", "cosine_rank"]
    pairs = list(read_pairs(sample["train"]).items())[:80]
    features, labels = [], []
    with MilvusSearcher(load_config(uri=sample["uri"]), encoder) as searcher:
        query_vectors = encoder.encode([q for q, _ in pairs])  # each query embedded once
        for (query, golds), found, query_vector in zip(
            pairs, searcher.bm25_with_vectors([q for q, _ in pairs], 50), query_vectors
        ):
            hits = [h for h, _ in found]
            cosine = np.array([float(np.dot(v, query_vector)) for _, v in found])
            matrix = lexical.lexical_matrix(query, hits)
            features.append(neural_matrix(names, lexical.lexical_scores(hits, matrix), cosine, lexical=matrix))
            labels.append(np.array([int(h.text in golds) for h in hits], dtype=np.int32))
    booster = learn.fit_ranker(
        learn.GroupedData(features, labels, feature_names=names),
        {"n_trees": 20, "num_leaves": 3, "learning_rate": 0.1, "min_child_samples": 5},
    )
    neural_dir = str(tmp_path / "neural_ranking")
    boosters = {"neural": booster, **({"lexical": lexical.lexical_model} if lexical.lexical_model is not None else {})}
    neural_spec = dict(
        spec,
        chosen="neural",
        neural={
            "features": names,
            "params": {},
            "model_file": "neural.txt",
            "set": "joint" if joint else "stacked",
            "dense_candidates": united,
        },
        fitted_with=dict(spec["fitted_with"], recall_model=weights_fingerprint(sample["export"])),
    )
    write_ranking(neural_dir, neural_spec, LexicalStats.load(os.path.join(output, "lexical_stats.json")), boosters)

    ranking = Ranking.load(neural_dir, model_dir=sample["export"])
    assert ranking.uses_dense and not ranking.uses_reranker and ranking.dense_candidates == united
    with MilvusSearcher(load_config(uri=sample["uri"]), encoder) as searcher:
        for query, _ in pairs:  # united: a query whose dense top 20 holds titles BM25's 50 lack
            found = searcher.bm25_with_vectors([query], 50)[0]
            query_vector = encoder.encode([query])[0]
            extra = []
            for hit, vector in (
                searcher.search_vectors(query_vector[None], united, with_vectors=True)[0] if united else []
            ):
                if hit.text not in {h.text for h, _ in found + extra}:
                    extra.append((Hit(hit.id, 0.0, hit.text, hit.fields), vector))
            if extra or not united:
                break
        assert bool(extra) == bool(united)
        hits = SearchSystem(searcher, ranking, encoder).search(query, top_k=5)
        found = found + extra
        candidates = [h for h, _ in found]
        cosine = np.array([float(np.dot(v, query_vector)) for _, v in found])
        matrix = lexical.lexical_matrix(query, candidates)
        expected = booster.predict(
            neural_matrix(names, lexical.lexical_scores(candidates, matrix), cosine, lexical=matrix)
        )
        order = sorted(range(len(candidates)), key=lambda i: (-expected[i], i))[:5]
        assert [h.id for h in hits] == [candidates[i].id for i in order]
        assert [h.score for h in hits] == pytest.approx([expected[i] for i in order])
        for hit in hits:  # "why": the neural model's per-feature contributions add up to the score
            assert hit.why["model"] == "neural" and set(hit.why["contributions"]) == set(names)
            assert hit.why["bias"] + sum(hit.why["contributions"].values()) == pytest.approx(hit.score, abs=1e-4)
        # several queries in one call (united: both legs' requests at once) give what each gives alone; an error of
        # a leg is the caller's one line, and the system serves on until closed
        system = SearchSystem(searcher, ranking, encoder)
        with pytest.raises(SearchError, match="cannot evaluate"):
            system.search(query, top_k=5, filter="no_such_field == 1")
        batch = system.search([q for q, _ in pairs[:5]] + [query], top_k=5)
        assert [[h.id for h in got] for got in batch] == [
            [h.id for h in system.search(q, top_k=5)] for q, _ in pairs[:5]
        ] + [[h.id for h in hits]]
        system.close()
        with pytest.raises(SystemClosedError):
            system.search(query, top_k=5)
        with pytest.raises(ConfigError, match="uses the dense cosine"):
            SearchSystem(searcher, ranking)  # the cosine needs the recall model

    other = tmp_path / "other_model"
    shutil.copytree(sample["export"], other)
    with open(other / "inference.pdiparams", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelMismatchError, match="was fitted with another recall model"):
        Ranking.load(neural_dir, model_dir=str(other))


def test_a_ranking_of_another_corpus_is_refused(sample, fitted, tmp_path, capsys):
    from recall.milvus import insert
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher
    from search import fit
    from search.system import Ranking, SearchSystem

    output, _ = fitted
    with open(sample["corpus"], encoding="utf-8") as f:
        lines = f.read().splitlines()
    corpus = tmp_path / "fewer.csv"
    corpus.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    np.save(tmp_path / "fewer.npy", np.load(sample["embeddings"])[:400])
    uri = str(tmp_path / "fewer.db")
    assert (
        insert.main(["--data_path", str(corpus), "--embedding_path", str(tmp_path / "fewer.npy"), "--uri", uri]) == 400
    )
    capsys.readouterr()
    with MilvusSearcher(load_config(uri=uri)) as searcher:  # noqa: SIM117
        with pytest.raises(ModelMismatchError, match=r"was fitted on another corpus \(500 documents"):
            SearchSystem(searcher, Ranking.load(output))
    with pytest.raises(SystemExit):  # fitting with the statistics of another corpus than the collection's
        fit.main(
            [
                "--train_file",
                sample["train"],
                "--corpus_file",
                sample["corpus"],
                "--output_dir",
                str(tmp_path / "r"),
                "--uri",
                uri,
            ]
        )
    assert "is not the corpus collection literature_search" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r")


def test_the_python_api_loads_a_pipeline_layout_and_the_readme_example_runs(sample, fitted, tmp_path, capsys):
    """SearchSystem.from_pipeline on a directory laid out as scripts/pipeline.py writes it (export/recall,
    export/ranking, milvus/neural_search.db): the README's example runs on it and serves what the CLI serves."""
    import re

    from recall.milvus import insert
    from search import SearchSystem, query

    output, _ = fitted
    pipeline = tmp_path / "pipeline"
    os.makedirs(pipeline / "export")
    os.makedirs(pipeline / "milvus")
    os.symlink(sample["export"], pipeline / "export" / "recall")
    os.symlink(output, pipeline / "export" / "ranking")
    # what the pipeline's milvus_insert builds: the paper records keyed by their own ids (the default)
    argv = ["--data_path", sample["papers"], "--embedding_path", sample["embeddings"]]
    assert insert.main([*argv, "--uri", str(pipeline / "milvus" / "neural_search.db")]) == 500
    with SearchSystem.from_pipeline(str(pipeline)) as system:
        results = system.search("语言 文化 差异", top_k=5)
        assert len(results) == 5 and {"search", "features", "rank", "total"} <= set(results.timings_ms)
        vectors = system.encode(["语言", "文化"])
        assert vectors.shape == (2, EMB) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    hits = query.main(
        [
            "--model_dir",
            sample["export"],
            "--ranking_dir",
            output,
            "--uri",
            str(pipeline / "milvus" / "neural_search.db"),
            "--query",
            "语言 文化 差异",
            "--top_k",
            "5",
        ]
    )
    assert [h.id for h in hits] == [h.id for h in results]

    with open(
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"), encoding="utf-8"
    ) as f:
        readme = f.read()
    code = re.search(
        r"```python\n(.*?)```", readme[readme.index("### Then search what `make run` built") :], re.S
    ).group(1)
    capsys.readouterr()
    exec(compile(code.replace('"output/pipeline/sample"', repr(str(pipeline))), "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len([line for line in lines if re.match(r"^sample-\d+ -?[\d.]+(e-?\d+)? \S", line)]) == 5, lines
    assert lines[-1] == f"(1, {EMB})"
    exec(compile(code.replace('"output/pipeline/sample"', repr(str(tmp_path / "nothing"))), "README.md", "exec"), {})
    assert "no pipeline output directory" in capsys.readouterr().out  # the example's except branch


# ---------------------------------------------------------------- paper records: filters, matches, why, more like this


def read_records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def assert_same_ranking(got, expected_ids, expected_scores):
    """got (Hits) is the top of the ranking expected_ids / expected_scores (best first, longer than got): the same
    scores in order and, score by score, the same ids (papers of equal score may come in either order, also across
    the cut)."""
    assert [round(h.score, 4) for h in got] == [round(s, 4) for s in expected_scores[: len(got)]]
    by_score = {}
    for doc_id, score in zip(expected_ids, expected_scores):
        by_score.setdefault(round(score, 4), set()).add(doc_id)
    for hit in got:
        assert hit.id in by_score[round(hit.score, 4)]


def test_a_filter_gives_each_leg_its_exact_ranking_over_the_matching_papers(sample):
    """Filtered top-k = brute force restricted to the matching papers: dense = numpy's exact inner products over
    them (FLAT index); bm25 = the unfiltered BM25 ranking of the whole corpus (Milvus' BM25 statistics are the
    collection's) with the other papers taken out; hybrid hits all match."""
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher

    records = read_records(sample["papers"])
    category = records[0]["category"]
    expression = f'category == "{category}" and year >= 2012'
    matching = {i for i, r in enumerate(records) if r["category"] == category and r["year"] >= 2012}
    assert 10 < len(matching) < 100
    embeddings = np.load(sample["embeddings"])
    encoder = TextEncoder(model_dir=sample["export"])
    with open(sample["dev"], encoding="utf-8") as f:
        queries = [line.split("\t")[0] for line in f][:8]
    with MilvusSearcher(load_config(uri=sample["uri"]), encoder) as searcher:
        for query in queries:
            scores = embeddings @ encoder.encode([query])[0]
            exact = sorted(matching, key=lambda i: -scores[i])
            dense = searcher.search(query, 10, "dense", filter=expression)
            assert len(dense) == 10
            assert all(h.fields["category"] == category and h.fields["year"] >= 2012 for h in dense)
            assert [h.score for h in dense] == pytest.approx([scores[i] for i in exact[:10]], abs=1e-4)
            assert_same_ranking(dense, exact, [float(scores[i]) for i in exact])

            everything = searcher.search(query, 500, "bm25")
            restricted = [h for h in everything if h.id in matching]
            bm25 = searcher.search(query, 10, "bm25", filter=expression)
            assert len(bm25) == min(10, len(restricted))
            assert_same_ranking(bm25, [h.id for h in restricted], [h.score for h in restricted])

            hybrid = searcher.search(query, 10, "hybrid", filter=expression)
            assert hybrid and {h.id for h in hybrid} <= matching


def test_the_system_ranks_only_matching_papers_and_explains_its_scores(sample, fitted):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher
    from search.system import Ranking, SearchSystem

    output, spec = fitted
    records = read_records(sample["papers"])
    with open(sample["dev"], encoding="utf-8") as f:
        query, gold = f.readline().rstrip("\n").split("\t")
    gold_id = next(i for i, r in enumerate(records) if r["title"] == gold)
    category = records[gold_id]["category"]
    expression = f'category == "{category}"'
    with MilvusSearcher(load_config(uri=sample["uri"])) as searcher:
        system = SearchSystem(searcher, Ranking.load(output))
        unfiltered = system.search(query, top_k=10)
        everything = system.search(query, top_k=10, filter="year >= 0")  # holds for every paper
        assert [(h.id, h.score) for h in everything] == [(h.id, h.score) for h in unfiltered]
        filtered = system.search(query, top_k=10, filter=expression)
        candidates = searcher.search(query, 50, "bm25", filter=expression)
        assert {h.id for h in filtered} <= {h.id for h in candidates}  # the ranking of the filtered candidates
        assert all(records[h.id]["category"] == category for h in filtered)
        assert gold_id in {h.id for h in filtered}
        assert [h.score for h in filtered] == sorted((h.score for h in filtered), reverse=True)
        for hit in filtered:
            assert hit.fields["category"] == category and hit.fields["paper_id"] == records[hit.id]["id"]
            words = query.split()
            in_title = [w for w in words if w.lower() in hit.text.lower() or w in records[hit.id]["keywords"]]
            assert [w for w in hit.matched if w in words] == in_title
            if spec["chosen"] == "bm25":
                assert hit.why is None
            else:  # LightGBM's contributions of the lexical model: bias + their sum = the score
                assert hit.why["model"] == "lexical"
                assert set(hit.why["contributions"]) == set(spec["lexical"]["features"])
                assert hit.why["bias"] + sum(hit.why["contributions"].values()) == pytest.approx(hit.score, abs=1e-4)
        assert all(h.why is None for h in system.search(query, top_k=3, explain=False))


def test_a_filter_milvus_cannot_evaluate_is_the_users_error(sample, fitted, capsys):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher, SearchError
    from search import query
    from search.system import Ranking, SearchSystem

    output, _ = fitted
    with MilvusSearcher(load_config(uri=sample["uri"])) as searcher:
        system = SearchSystem(searcher, Ranking.load(output))
        for bad in ("category ==", "no_such_field == 1", 'year > "x"'):
            with pytest.raises(SearchError, match="cannot evaluate"):
                system.search("语言 文化", top_k=5, filter=bad)
            with pytest.raises(SearchError, match="cannot evaluate"):
                searcher.search("语言 文化", 5, "bm25", filter=bad)
        with pytest.raises(SearchError, match="not a Milvus boolean expression"):
            system.search("语言 文化", top_k=5, filter=3)
        assert system.search("语言 文化", top_k=5)  # still serving
    with pytest.raises(SystemExit) as exit_:
        query.main(["--ranking_dir", output, "--uri", sample["uri"], "--query", "语言 文化", "--filter", "category =="])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: filter 'category ==': Milvus cannot evaluate it")


def test_the_cli_filters_and_shows_fields_matches_and_why(sample, fitted, capsys):
    from search import query

    output, spec = fitted
    records = read_records(sample["papers"])
    category = records[3]["category"]
    hits = query.main(
        ["--ranking_dir", output, "--uri", sample["uri"], "--query", "研究 分析", "--top_k", "5", "--json"]
        + ["--filter", f'category == "{category}" and year <= 2015']
    )
    printed = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in printed["hits"]] == [h.id for h in hits] and hits
    for hit in printed["hits"]:
        record = records[hit["id"]]
        assert hit["fields"]["category"] == category and hit["fields"]["year"] <= 2015
        assert hit["fields"]["keywords"] == record["keywords"] and hit["text"] == record["title"]
        assert set(hit["matched"]) <= {"研究", "分析"}
        assert ("why" in hit) == (spec["chosen"] != "bm25")


def test_more_like_this_searches_by_the_papers_vector_and_title(sample, capsys):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher
    from search import query
    from search.system import SearchSystem

    records = read_records(sample["papers"])
    embeddings = np.load(sample["embeddings"])
    with MilvusSearcher(load_config(uri=sample["uri"])) as searcher:
        system = SearchSystem(searcher, None, mode="bm25")
        similar = system.more_like_this(7, top_k=10)
        assert len(similar) == 10 and 7 not in {h.id for h in similar}
        # Milvus' RRF of two rankings without paper 7: the stored vector's exact neighbours and its title's BM25
        config = searcher.config
        pool = max(10, config.hybrid_candidates)
        by_vector = [int(i) for i in np.argsort(-(embeddings @ embeddings[7]), kind="stable") if i != 7][:pool]
        by_title = [h.id for h in searcher.search(records[7]["title"], pool + 1, "bm25") if h.id != 7][:pool]
        fused = {}
        for ranking in (by_vector, by_title):
            for rank, doc_id in enumerate(ranking, 1):
                fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (config.rrf_k + rank)
        assert [h.score for h in similar] == pytest.approx(sorted(fused.values(), reverse=True)[:10], abs=1e-6)
        assert all(h.score == pytest.approx(fused[h.id], abs=1e-6) for h in similar)
        # what "more like this" highlights: the paper's keywords, whole or by their words
        source = [k.lower() for k in records[7]["keywords"]]
        assert any(h.matched for h in similar)
        assert all(any(word.lower() in k for k in source) for h in similar for word in h.matched)
        category = records[7]["category"]
        same_field = system.more_like_this(7, top_k=5, filter=f'category == "{category}"')
        assert all(records[h.id]["category"] == category for h in same_field) and 7 not in {h.id for h in same_field}
    hits = query.main(["--uri", sample["uri"], "--search_by_id", "7", "--top_k", "10"])
    assert [h.id for h in hits] == [h.id for h in similar]
    assert "more_like: 7" in capsys.readouterr().out


def test_the_legs_hand_back_each_querys_stored_vectors_read_as_one_column(sample):
    """The search system's legs read a reply's vectors as one float column (recall.milvus.search.reply_rows; pymilvus
    would decode each into Python floats, ~2 ms for BM25's 50): for every query of a several-query request, BM25's and
    the dense leg's hits carry their stored vectors (fetched again by id), and a reply of another shape (plain lists:
    pymilvus' own decoding) gives the same hits and vectors."""
    from recall.milvus import store
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher, reply_rows

    queries = [line.split("\t")[0] for line in open(sample["dev"], encoding="utf-8")][:3]
    encoder = TextEncoder(model_dir=sample["export"])
    with MilvusSearcher(load_config(uri=sample["uri"]), encoder) as searcher:
        bm25 = searcher.bm25_with_vectors(queries, 20)
        dense = searcher.search_vectors(encoder.encode(queries), 5, with_vectors=True)
        assert len(bm25) == len(dense) == 3 and all(len(found) == 5 for found in dense) and any(bm25)
        for found in bm25 + dense:
            stored = searcher.get_records([hit.id for hit, _ in found], with_vectors=True)
            for hit, vector in found:
                assert vector.dtype == np.float32 and vector.shape == (encoder.dim,)
                np.testing.assert_array_equal(vector, np.asarray(stored[hit.id]["vector"], dtype=np.float32))
        raw = searcher.client.search(
            searcher.config.collection,
            data=searcher._bm25_data(queries),
            anns_field=store.SPARSE_FIELD,
            limit=20,
            search_params={"metric_type": "BM25"},
            output_fields=[store.TEXT_FIELD, store.DENSE_FIELD],
        )
        assert hasattr(raw[0], "lazy_field_data")  # this pymilvus' reply: the one-column path is the one taken
        column = list(reply_rows(raw, with_vectors=True))
        decoded = list(reply_rows([list(hits) for hits in raw], with_vectors=True))  # iterating decodes (pymilvus)
    assert [len(rows) for rows, _ in column] == [len(found) for found in bm25]
    for (rows, vectors), (plain_rows, plain_vectors) in zip(column, decoded):
        assert [r["id"] for r in rows] == [r["id"] for r in plain_rows]
        np.testing.assert_array_equal(vectors, plain_vectors)


def test_the_python_api_is_safe_to_share_between_threads(sample, fitted):
    """Issue 31.3: one SearchSystem shared by 8 threads, each query searched (mode dense and mode system) and encoded
    twice over: every ranking and every vector equals the sequential one (calls take turns on the system's lock)."""
    from concurrent.futures import ThreadPoolExecutor

    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher
    from search.system import Ranking, SearchSystem

    with open(sample["dev"], encoding="utf-8") as f:
        queries = [line.split("\t")[0] for line in f][:48]
    with MilvusSearcher(load_config(uri=sample["uri"]), TextEncoder(model_dir=sample["export"])) as searcher:
        for mode, ranking in (("dense", None), ("system", Ranking.load(fitted[0]))):
            system = SearchSystem(searcher, ranking, searcher.encoder, mode=mode)

            def answer(query, system=system):
                return [(h.id, h.score) for h in system.search(query, top_k=10)], system.encode([query])[0]

            expected = [answer(query) for query in queries]
            with ThreadPoolExecutor(8) as pool:
                for _ in range(2):
                    got = list(pool.map(answer, queries))
                    assert [hits for hits, _ in got] == [hits for hits, _ in expected], mode
                    for (_, vector), (_, sequential) in zip(got, expected):
                        np.testing.assert_array_equal(vector, sequential)


def test_the_python_api_refuses_bad_arguments_with_one_line(sample, fitted):
    """Issue 31.11: not-text texts and not-integer paper ids are a BadInputError of one line; a paper id given as a
    string of digits is that paper; a closed system says so (a NeuralSearchError), not a thread pool's RuntimeError."""
    from ns_common.errors import BadInputError, NeuralSearchError
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher
    from search.system import Ranking, SearchSystem

    searcher = MilvusSearcher(load_config(uri=sample["uri"]), TextEncoder(model_dir=sample["export"]))
    try:
        system = SearchSystem(searcher, Ranking.load(fitted[0]), searcher.encoder)
        calls = [
            (lambda: system.more_like_this(None), "a paper id is an integer"),
            (lambda: system.more_like_this(1.5), "a paper id is an integer"),
            (lambda: system.more_like_this(True), "a paper id is an integer"),
            (lambda: system.encode(None), "texts must be a string or a list of strings, got NoneType"),
            (lambda: system.encode([1]), "texts[0] is int, not text (str)"),
            (lambda: system.encode(["语言", b"x"]), "texts[1] is bytes, not text (str)"),
        ]
        for call, message in calls:
            with pytest.raises(BadInputError) as error:
                call()
            assert message in str(error.value) and "\n" not in str(error.value)
        by_text = system.more_like_this("18", top_k=5)
        assert [h.id for h in by_text] == [h.id for h in system.more_like_this(18, top_k=5)] and len(by_text) == 5
        system.close()
        for call in (lambda: system.search("语言 文化", top_k=5), lambda: system.encode(["语言"])):
            with pytest.raises(NeuralSearchError, match="this SearchSystem is closed"):
                call()
    finally:
        searcher.close()


def test_cross_fitting_scores_each_fold_by_its_own_model_and_fits_on_every_query(sample, tmp_path, capsys):
    """search/fit.py --fold_model_dirs: a fold model embeds its queries' candidates itself; one with the served
    model's weights gives the cosines the served model gives from the collection's stored vectors. The neural tier is
    then fitted on every training query (each in one --heldout_file); mismatched inputs are refused in one line."""
    from recall.milvus.config import load_config
    from recall.milvus.model import TextEncoder
    from recall.milvus.search import MilvusSearcher
    from search import fit

    split = ["data/split_train.py", "--train_file", sample["train"], "--output_dir", str(tmp_path / "split")]
    subprocess.run([sys.executable, *split, "--folds", "3"], cwd=ROOT, check=True, capture_output=True)
    heldout = [str(tmp_path / "split" / name) for name in ("train_fit.csv", "fold1_heldout.csv", "fold2_heldout.csv")]
    folds = []
    for i in (1, 2):  # fold models with the served model's weights: their cosines must equal the stored vectors'
        shutil.copytree(sample["export"], tmp_path / f"fold{i}")
        folds.append(str(tmp_path / f"fold{i}"))
    argv = ["--train_file", sample["train"], "--corpus_file", sample["corpus"], "--uri", sample["uri"], "--folds", "3"]
    argv += ["--grid", "first"]  # no hyperparameter search: the cross-fitting is what is checked (the search: fitted)
    argv += ["--model_dir", sample["export"], "--output_dir", str(tmp_path / "ranking"), "--heldout_file", *heldout]
    args = fit.parse_args(argv + ["--fold_model_dirs", *folds])
    pairs, fold_of = fit.read_heldout(args.heldout_file)
    assert sorted(set(fold_of.values())) == [0, 1, 2] and set(pairs) == set(fit.read_pairs(sample["train"]))
    queries = [q for q in pairs if fold_of[q]][:40]
    encoder = TextEncoder(model_dir=sample["export"])
    with MilvusSearcher(load_config(uri=sample["uri"]), encoder) as searcher:
        candidates = dict(zip(queries, searcher.bm25_with_vectors(queries, fit.CANDIDATES)))
    by_folds = fit.dense_cosines(args, queries, fold_of, candidates, encoder)
    stored = fit.dense_cosines(args, queries, dict.fromkeys(queries, 0), candidates, encoder)
    for query in queries:
        assert len(by_folds[query]) == len(candidates[query]) > 0
        np.testing.assert_allclose(by_folds[query], stored[query], atol=1e-4)

    texts = [line.rstrip("\n") for line in open(sample["corpus"], encoding="utf-8")]
    with MilvusSearcher(load_config(uri=sample["uri"]), encoder) as searcher:
        embedded = {}
        by_fold_tops = fit.dense_tops(args, queries, fold_of, searcher, encoder, texts, 5, embedded)
        stored_tops = fit.dense_tops(args, queries, dict.fromkeys(queries, 0), searcher, encoder, texts, 5)
    reused = fit.dense_cosines(args, queries, fold_of, candidates, encoder, embedded)  # the corpus embedded once
    for query in queries:
        np.testing.assert_allclose(reused[query], by_folds[query], atol=1e-4)
    for query in queries:  # the same top 5 (ties aside) with the same cosines, from the corpus or the collection
        mine, theirs = by_fold_tops[query], stored_tops[query]
        np.testing.assert_allclose([c for _, c in mine], [c for _, c in theirs], atol=1e-4)
        assert [h.text for h, _ in mine][:1] == [h.text for h, _ in theirs][:1]

    spec = fit.main(argv + ["--fold_model_dirs", *folds, "--dense_candidates", "0", "10"])
    train_queries = len(fit.read_pairs(sample["train"]))
    assert spec["queries"] == {"train": train_queries, "heldout": train_queries} and len(spec["fold_models"]) == 2
    neural_rows = [row for row in spec["cross_validation"] if row["tier"] == "neural"]
    assert neural_rows and all(row["queries"] == train_queries for row in neural_rows)
    united = [row for row in neural_rows if row["row"].endswith(", + dense top 10")]
    assert [row["features"] for row in united] == [fit.FEATURES + fit.DENSE]  # the joint set alone
    assert spec["neural"] is None or spec["neural"]["dense_candidates"] in (0, 10)

    capsys.readouterr()
    for extra, message in (
        (["--fold_model_dirs", folds[0]], "3 files for 2 recall models"),
        (["--fold_model_dirs", *folds, "--reranker_dir", folds[0]], "not out of fold"),
    ):
        with pytest.raises(SystemExit):
            fit.main(argv + extra)
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    lexical_only = argv[: argv.index("--model_dir")] + ["--output_dir", str(tmp_path / "lexical_ranking")]
    for bad, message in (
        (argv + ["--fold_model_dirs", *folds, "--dense_candidates", "-1"], "each k must be 0 or more"),
        (lexical_only + ["--dense_candidates", "10"], "give --model_dir and --heldout_file"),
    ):
        with pytest.raises(SystemExit):
            fit.main(bad)
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit):  # a query held out twice
        fit.main(argv[:-4] + ["--heldout_file", heldout[0], heldout[0], "--fold_model_dirs", folds[0]])
    err = capsys.readouterr().err.strip()
    assert "is held out in" in err and len(err.splitlines()) == 1, err
