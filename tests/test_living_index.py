"""A living index (issue 30): a collection keyed by the papers' own ids, papers added, changed and deleted without a
rebuild, on real Milvus Lite (and, for the web service, the same engine over gRPC).

The fast tests use random unit vectors (an .npy per file, as feature_extract writes them: row i = line i) and search the
dense and hybrid legs with the papers' own vectors; the last one runs the recall model of the session's web_index."""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SAMPLE_PAPERS

BASE = 490  # the sample's first 490 papers are built; its last 10 are added
CHANGED, RECATEGORISED = 100, 200  # lines of a paper retitled and of one whose category alone changes
NEW_TITLE = "量子纠缠在区块链共识协议中的应用研究"
FAKE_MODEL = "f" * 40  # the weights sha1 the .npy files' provenance names (checked against the collection's)


def unit_vectors(n, seed, dim=8):
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_corpus(root, name, records, vectors):
    """name.jsonl and name.npy (row i = line i) with feature_extract's provenance record naming FAKE_MODEL."""
    from recall.milvus.data import corpus_fingerprint

    path = os.path.join(root, f"{name}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    np.save(os.path.join(root, f"{name}.npy"), vectors)
    documents, sha1 = corpus_fingerprint(path)
    provenance = {"model": FAKE_MODEL, "probe": [1.0, 0.0], "corpus": {"documents": documents, "sha1": sha1}}
    with open(os.path.join(root, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(provenance, f)
    return path, os.path.join(root, f"{name}.npy")


@pytest.fixture(scope="module")
def living(tmp_path_factory):
    """The sample's papers as base (490), all (500) and update (500, one retitled, one recategorised, with other
    vectors on those two lines) corpora with their .npy, and a collection keyed by paper ids built from base."""
    from recall.milvus import insert

    root = str(tmp_path_factory.mktemp("living"))
    with open(SAMPLE_PAPERS, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    vectors = unit_vectors(len(records), 0)
    files = {
        "base": write_corpus(root, "base", records[:BASE], vectors[:BASE]),
        "all": write_corpus(root, "all", records, vectors),
    }
    updated, updated_vectors = [dict(r) for r in records], vectors.copy()
    updated[CHANGED]["title"] = NEW_TITLE
    updated[RECATEGORISED]["category"] = "新的类别"
    updated_vectors[[CHANGED, RECATEGORISED]] = unit_vectors(2, 1)
    files["update"] = write_corpus(root, "update", updated, updated_vectors)
    db = os.path.join(root, "base.db")
    corpus, npy = files["base"]
    assert (
        insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", db, "--primary_key", "paper_id"]) == BASE
    )
    return {
        "root": root,
        "db": db,
        "files": files,
        "records": records,
        "vectors": vectors,
        "updated": updated,
        "updated_vectors": updated_vectors,
    }


def fresh_copy(living, tmp_path):
    """A copy of the base collection's database for one test (Milvus Lite: one process per file)."""
    path = str(tmp_path / "living.db")
    shutil.copy(living["db"], path)
    return path


def searcher(uri):
    from recall.milvus.config import load_config
    from recall.milvus.search import MilvusSearcher

    return MilvusSearcher(load_config(uri=uri))


def stored(uri) -> dict:
    """{paper id: (text, vector bytes)} of every row of the collection."""
    with searcher(uri) as s:
        rows = s.client.query_iterator(
            s.config.collection, batch_size=1000, output_fields=["paper_id", "text", "embedding"]
        )
        found = {}
        while batch := rows.next():
            for row in batch:
                found[row["paper_id"]] = (row["text"], np.asarray(row["embedding"], dtype=np.float32).tobytes())
        rows.close()
    return found


def found_in_every_leg(s, title, vector, top_k=3) -> dict:
    """{leg: the ids of its top_k} for a title and a vector (dense and hybrid with the given vector: no model)."""
    return {
        "bm25": [h.id for h in s.search(title, top_k=top_k, mode="bm25")],
        "dense": [h.id for h in s.search_vectors(vector[None], top_k=top_k)[0]],
        "hybrid": [h.id for h in s.search_batch([title], top_k, "hybrid", vectors=vector[None])[0]],
    }


def update(living, uri, name, *extra):
    from recall.milvus import insert

    corpus, npy = living["files"][name]
    return insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", uri, *extra])


def test_ten_papers_added_are_found_in_every_leg_by_their_ids_and_no_other_row_changes(living, tmp_path):
    from recall.milvus import store
    from recall.milvus import update as living_update

    uri = fresh_copy(living, tmp_path)
    before = stored(uri)
    assert len(before) == BASE
    assert update(living, uri, "all") == 500
    after = stored(uri)
    new_ids = [r["id"] for r in living["records"][BASE:]]
    assert set(after) == set(before) | set(new_ids)
    assert all(after[paper] == before[paper] for paper in before)  # the other 490: text and vector byte for byte
    with searcher(uri) as s:
        assert s.keyed_by_paper
        for line, paper in enumerate(new_ids, BASE):
            title, vector = living["records"][line]["title"], living["vectors"][line]
            for leg, ids in found_in_every_leg(s, title, vector).items():
                assert ids[0] == paper, (leg, paper, ids)
            assert after[paper] == (title, vector.tobytes())
            similar = [h.id for h in s.more_like_this(paper, top_k=5)]
            assert similar and paper not in similar
            assert s.get_records([paper])[paper]["fields"]["paper_id"] == paper
        # the same file again plans nothing: every paper is unchanged
        plan = living_update.plan_update(s.client, s.config, living["files"]["all"][0])
        assert (plan.new, plan.changed_text, plan.changed_fields, plan.unchanged) == ([], [], {}, 500)
        assert store.count_entities(s.client, s.config) == 500


def test_a_changed_title_is_found_the_old_one_not_and_a_changed_field_keeps_its_vector(living, tmp_path):
    uri = fresh_copy(living, tmp_path)
    update(living, uri, "all")
    before = stored(uri)
    assert update(living, uri, "update") == 500
    after = stored(uri)
    records, updated, vectors = living["records"], living["updated"], living["updated_vectors"]
    retitled, recategorised = records[CHANGED]["id"], records[RECATEGORISED]["id"]
    assert after[retitled] == (NEW_TITLE, vectors[CHANGED].tobytes())  # embedded again: the new row of the .npy
    assert after[recategorised] == before[recategorised]  # its .npy row changed, its text did not: vector kept
    assert all(after[p] == before[p] for p in before if p != retitled)
    with searcher(uri) as s:
        assert s.search(NEW_TITLE, top_k=1, mode="bm25")[0].id == retitled
        old = records[CHANGED]["title"]
        assert all(h.text != old for h in s.search(old, top_k=20, mode="bm25"))
        assert s.get_records([recategorised])[recategorised]["fields"]["category"] == updated[RECATEGORISED]["category"]
        title = records[RECATEGORISED]["title"]
        assert [h.id for h in s.search(title, top_k=5, mode="bm25", filter='category == "新的类别"')] == [recategorised]


def test_deleted_papers_are_gone_from_every_leg_and_from_more_like_this(living, tmp_path):
    from recall.milvus import delete
    from search.system import SearchSystem, UnknownPaperError

    uri = fresh_copy(living, tmp_path)
    records, vectors = living["records"], living["vectors"]
    gone, kept = records[7]["id"], records[8]["id"]
    with searcher(uri) as s:
        system = SearchSystem(s, mode="bm25")
        neighbours = [h.id for h in s.more_like_this(kept, top_k=20)]
        assert system.delete([gone, "no-such-paper"]) == [gone]
        assert system.documents() == BASE - 1
        for leg, ids in found_in_every_leg(s, records[7]["title"], vectors[7], top_k=20).items():
            assert gone not in ids, leg
        assert gone not in [h.id for h in s.more_like_this(kept, top_k=20)]
        assert len(neighbours) == 20
        with pytest.raises(UnknownPaperError):
            system.more_like_this(gone)
        with pytest.raises(UnknownPaperError):
            system.paper(gone)
        assert system.paper(kept)["text"] == records[8]["title"]
    # the command: an unknown id is named and skipped
    assert delete.main(["--ids", kept, "no-such-paper", "--uri", uri]) == [kept]
    assert set(stored(uri)) == {r["id"] for r in records[:BASE]} - {gone, kept}


def test_keyed_by_paper_ids_by_default_answers_as_keyed_by_lines(living, tmp_path):
    """Paper ids are the default key of records with ids: the same file and vectors keyed by ids (the default) and by
    lines (--primary_key line) answer every query in every mode, and more-like-this, with the same texts and scores in
    the same order (hybrid's RRF: papers of exactly equal fused scores are ordered by primary key, so among those only
    the order may differ); only the ids differ (a hit's id is its paper's own id, the record's at that line), in hits
    and in the companion of a query file's recall result (recall_result.ids.txt)."""
    from conftest import sample_file

    from ns_common.io import recall_ids_file
    from recall.milvus import insert
    from search import query

    def read_rows(path):
        with open(path, encoding="utf-8") as f:
            return [tuple(line.rstrip("\n").split("\t")) for line in f]

    corpus, npy = living["files"]["all"]
    by_ids, by_lines = str(tmp_path / "ids.db"), str(tmp_path / "lines.db")
    assert insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", by_ids]) == len(living["records"])
    argv = ["--data_path", corpus, "--embedding_path", npy, "--uri", by_lines, "--primary_key", "line"]
    assert insert.main(argv) == len(living["records"])
    with open(sample_file("recall", "dev.csv"), encoding="utf-8") as f:
        queries = [line.split("\t")[0] for line in f][:100]
    probes = unit_vectors(len(queries), 5)
    paper_of_line = [r["id"] for r in living["records"]]
    answers = {}
    for uri in (by_ids, by_lines):
        with searcher(uri) as s:
            answers[uri] = {
                "bm25": s.search_batch(queries, 20, "bm25"),
                "dense": s.search_vectors(probes, top_k=20),
                "hybrid": s.search_batch(queries, 20, "hybrid", vectors=probes),
                "more like this": [  # a paper named as the collection names it: its own id, or its line
                    s.more_like_this(paper_of_line[line] if uri == by_ids else line, top_k=20)
                    for line in (18, 250, 499)
                ],
            }
            assert s.keyed_by_paper == (uri == by_ids)
    by_paper = {r["id"]: r["title"] for r in living["records"]}

    def shown(lists, own_id):
        return [[(own_id(h.id), h.text, round(h.score, 6)) for h in hits] for hits in lists]

    for mode, with_ids in answers[by_ids].items():
        with_lines = shown(answers[by_lines][mode], lambda line: paper_of_line[line])
        with_ids = shown(with_ids, lambda paper: paper)
        assert all(with_ids) and all(by_paper[paper] == text for hits in with_ids for paper, text, _ in hits), mode
        if mode in ("bm25", "dense"):
            assert with_ids == with_lines, mode
        else:  # Milvus orders papers of exactly the same RRF score by primary key: among them only, the order differs
            assert [[score for *_, score in hits] for hits in with_ids] == [
                [score for *_, score in hits] for hits in with_lines
            ], mode
            assert [sorted(hits) for hits in with_ids] == [sorted(hits) for hits in with_lines], mode
    # search.query --query_file: recall_result.txt keyed by text (the same either way), its companion
    # recall_result.ids.txt naming the same rows by id (the paper's own, or its corpus line)
    written = {}
    for uri in (by_ids, by_lines):
        result = str(tmp_path / f"{os.path.basename(uri)}.recall_result.txt")
        argv = ["--uri", uri, "--mode", "bm25", "--query_file", sample_file("recall", "dev.csv"), "--recall_num", "5"]
        assert query.main([*argv, "--recall_result_file", result])["recall@1"] > 0
        written[uri] = [read_rows(result), read_rows(recall_ids_file(result))]
    texts, ids = written[by_ids]
    assert texts == written[by_lines][0] and len(texts) == len(ids) > 0
    assert [(q, by_paper[i], score) for q, i, score in ids] == texts
    assert [(q, paper_of_line[int(i)], score) for q, i, score in written[by_lines][1]] == ids


def test_delete_refuses_a_collection_keyed_by_lines(living, tmp_path, capsys):
    from recall.milvus import delete, insert

    uri = str(tmp_path / "lines.db")
    corpus, npy = living["files"]["base"]
    assert insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", uri, "--primary_key", "line"]) == BASE
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        delete.main(["--ids", living["records"][0]["id"], "--uri", uri])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "keyed by corpus lines" in err[0] and "--primary_key paper_id" in err[0]
    assert len(stored(uri)) == BASE


def run_until(args, marker, log_path):
    """Starts `python -m recall.milvus.insert args` in a session of its own and kill -9s the whole session (the command
    and its Milvus Lite engine) as soon as its log shows `marker`; returns the log."""
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "recall.milvus.insert", *args],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        try:
            while process.poll() is None:
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    if marker in f.read():
                        os.killpg(process.pid, signal.SIGKILL)
                        break
        finally:
            process.wait(timeout=120)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return f.read(), process.returncode


@pytest.mark.slow
@pytest.mark.parametrize(
    "marker",
    ["new papers,", "wrote batch 1:", "wrote batch 4:"],
    ids=["after-the-plan", "after-one-batch", "after-the-last-batch-before-flush"],
)
def test_an_update_killed_with_sigkill_rolls_forward_when_run_again(living, tmp_path, marker):
    """11 papers to write (10 new, 1 retitled) in batches of 3: killed after planning, after its first batch and after
    its last batch (before the flush), the same command run again leaves exactly the papers of the file, each with its
    title and its vector."""
    uri = fresh_copy(living, tmp_path)
    corpus, npy = living["files"]["update"]
    args = ["--data_path", corpus, "--embedding_path", npy, "--uri", uri, "--batch_size", "3"]
    log, code = run_until(args, marker, str(tmp_path / "killed.log"))
    assert code == -signal.SIGKILL, log[-2000:]
    assert marker in log
    from recall.milvus import insert

    assert insert.main(args) == 500
    expected = {
        r["id"]: (r["title"], living["updated_vectors"][line].tobytes())
        for line, r in enumerate(living["updated"])
        if line != RECATEGORISED  # its vector is the stored one (a field changed, not its title)
    }
    after = stored(uri)
    assert set(after) == {r["id"] for r in living["updated"]}
    assert {paper: after[paper] for paper in expected} == expected
    assert after[living["records"][RECATEGORISED]["id"]][1] == living["vectors"][RECATEGORISED].tobytes()


@pytest.mark.slow
def test_a_service_started_before_an_update_serves_the_new_papers_over_grpc(living, web_index, tmp_path, capsys):
    """The Lite engine over gRPC, a collection keyed by paper ids built with the recall model (insert --model_dir),
    the web service started on it; then the 10 papers added by insert in another process (only they embedded) and one
    deleted through the API: the running service finds the new ones in every mode, by their ids, and no longer the
    deleted one. A model other than the collection's is refused; the ranking's statistics, stale, are refreshed."""
    from conftest import RunningService, assert_clean_log, request

    from recall.milvus import insert
    from recall.milvus.local_server import LiteEngineServer
    from search import refresh_stats

    model = web_index["recall_export"]
    ranking = str(tmp_path / "ranking")
    shutil.copytree(web_index["ranking"], ranking)
    base, _ = living["files"]["base"]
    everything, _ = living["files"]["all"]
    new = living["records"][BASE:]
    with LiteEngineServer(str(tmp_path / "engine")) as server:
        uri = ["--uri", server.uri]
        assert insert.main(["--data_path", base, "--model_dir", model, *uri, "--primary_key", "paper_id"]) == BASE
        # the collection's model is web_index's: vectors of another (the .npy's provenance names one) are refused
        other = unit_vectors(len(living["records"]), 2, dim=64)
        corpus, other_npy = write_corpus(str(tmp_path), "other", living["records"], other)
        capsys.readouterr()
        with pytest.raises(SystemExit) as refused:
            insert.main(["--data_path", corpus, "--embedding_path", other_npy, *uri])
        assert refused.value.code == 2 and "holds vectors of another model" in capsys.readouterr().err
        service = RunningService(
            str(tmp_path / "service.log"), "--model_dir", model, "--ranking_dir", ranking, *uri, "--allow_delete"
        )
        try:

            def ids(title, mode):
                status, data, _ = request(service.port, "POST", "/api/search", {"query": title, "mode": mode})
                assert status == 200, data
                return [hit["id"] for hit in data["hits"]]

            modes = ("system", "bm25", "dense", "hybrid")
            assert all(new[0]["id"] not in ids(new[0]["title"], mode) for mode in modes)
            assert insert.main(["--data_path", everything, "--model_dir", model, *uri]) == 500
            for paper in new:
                for mode in modes:
                    assert paper["id"] in ids(paper["title"], mode)[:3], (mode, paper["id"])
            status, data, _ = request(service.port, "GET", f"/api/paper/{new[0]['id']}")
            assert status == 200 and data["text"] == new[0]["title"]
            status, data, _ = request(service.port, "POST", "/api/delete", {"ids": [new[0]["id"], "no-such"]})
            assert status == 200 and data == {"deleted": [new[0]["id"]], "not_found": ["no-such"]}
            assert all(new[0]["id"] not in ids(new[0]["title"], mode) for mode in modes)
            status, data, _ = request(service.port, "POST", "/api/more_like_this", {"id": new[1]["id"], "top_k": 20})
            assert status == 200 and new[0]["id"] not in [h["id"] for h in data["hits"]]
            assert request(service.port, "GET", f"/api/paper/{new[0]['id']}")[0] == 404
            assert request(service.port, "GET", "/api/health")[1]["documents"] == 499
        finally:
            service.stop()
        assert_clean_log(service.log_text())
        assert "lexical statistics of 500 papers, the collection holds 490" in service.log_text()
        assert refresh_stats.main(["--ranking_dir", ranking, *uri]) == 499
        assert refresh_stats.main(["--ranking_dir", ranking, *uri]) == 499  # current: nothing rewritten
        from search.ranking import Ranking

        assert Ranking.load(ranking).stats.n_docs == 499


def test_ids_that_cannot_key_a_paper_are_one_line_before_anything_is_written(
    living, tmp_path, capsys, monkeypatch, warnings_logged
):
    """A record without an id in an update, two ids with one primary key (a BLAKE2b collision, forced here: none is
    known at 63 bits), --model_dir for a collection keyed by lines: one line, exit 2, the collection unchanged; a title
    file asked to be keyed by paper ids is keyed by lines, said in one warning."""
    from recall.milvus import insert, store

    uri = fresh_copy(living, tmp_path)
    before = stored(uri)
    records = living["records"]

    def refused(records_):
        corpus, npy = write_corpus(str(tmp_path), "bad", records_, living["vectors"][: len(records_)])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", uri])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1, err
        assert stored(uri) == before
        return err[0]

    no_id = [dict(r) for r in records]
    del no_id[BASE + 3]["id"]
    assert f"bad.jsonl:{BASE + 4}: a paper without an id" in refused(no_id)

    real_key = store.paper_key
    twins = {records[BASE]["id"], records[BASE + 1]["id"]}
    monkeypatch.setattr(store, "paper_key", lambda paper: 1 if paper in twins else real_key(paper))
    message = refused(records)
    assert "give one primary key" in message and all(repr(paper) in message for paper in twins)
    first, newcomer = records[0]["id"], records[BASE]["id"]  # a new id with the key of a stored paper
    monkeypatch.setattr(store, "paper_key", lambda paper: real_key(first) if paper == newcomer else real_key(paper))
    assert f"gives the primary key of stored paper {first!r}" in refused(records[BASE:])
    monkeypatch.setattr(store, "paper_key", real_key)

    titles = tmp_path / "titles.csv"
    titles.write_text("".join(r["title"] + "\n" for r in records[:BASE]), encoding="utf-8")
    np.save(tmp_path / "titles.npy", living["vectors"][:BASE])
    lines_uri = str(tmp_path / "titles.db")
    args = ["--data_path", str(titles), "--embedding_path", str(tmp_path / "titles.npy"), "--uri", lines_uri]
    assert insert.main(args) == BASE  # paper ids are the default: a title file has none
    said = "{}: 490 of its 490 papers have no id (a title file has none): the collection is keyed by corpus lines"
    assert any(said.format(titles) in warning for warning in warnings_logged), warnings_logged
    with searcher(lines_uri) as s:
        assert not s.keyed_by_paper and s.search(records[3]["title"], top_k=1, mode="bm25")[0].id == 3
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        insert.main(["--data_path", str(titles), "--model_dir", str(tmp_path), "--uri", lines_uri])
    assert exit_.value.code == 2 and "keyed by corpus lines" in capsys.readouterr().err


CSL_PAPERS = os.path.join(REPO, "..", "shared", "data", "csl", "papers.jsonl")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(CSL_PAPERS), reason="CSL not found at ../shared/data/csl (licence: not bundled)")
def test_csl_built_on_80_percent_then_updated_searches_as_a_build_on_all(tmp_path):
    """CSL's 9,000 papers: a collection built on the first 80% and then given the file of all of them (the other 20%
    added by the update) answers 200 keyword queries in BM25, and dense ones, exactly as a collection built on all:
    the same ids, the same scores (Milvus' BM25 keeps its statistics as rows arrive)."""
    from recall.milvus import insert

    with open(CSL_PAPERS, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    vectors = unit_vectors(len(records), 3)
    part = int(0.8 * len(records))
    first, first_npy = write_corpus(str(tmp_path), "first", records[:part], vectors[:part])
    every, every_npy = write_corpus(str(tmp_path), "every", records, vectors)
    updated, whole = str(tmp_path / "updated.db"), str(tmp_path / "whole.db")
    keyed = ["--primary_key", "paper_id"]
    assert insert.main(["--data_path", first, "--embedding_path", first_npy, "--uri", updated, *keyed]) == part
    assert insert.main(["--data_path", every, "--embedding_path", every_npy, "--uri", updated]) == len(records)
    assert insert.main(["--data_path", every, "--embedding_path", every_npy, "--uri", whole, *keyed]) == len(records)
    queries = [" ".join(r["keywords"]) for r in records if r.get("keywords")][:200]
    probes = unit_vectors(len(queries), 4)
    answers = []
    for uri in (updated, whole):
        with searcher(uri) as s:
            bm25 = [[(h.id, round(h.score, 4)) for h in hits] for hits in s.search_batch(queries, 10, "bm25")]
            dense = [[(h.id, round(h.score, 5)) for h in hits] for hits in s.search_vectors(probes, top_k=10)]
            answers.append((bm25, dense))
    assert len(queries) == 200 and all(answers[0][0])
    assert answers[0] == answers[1]


def test_the_delete_route_is_off_by_default_and_refused_over_a_collection_keyed_by_lines(
    living, papers_pipeline, tmp_path
):
    """POST /api/delete: a 403 unless the service allows it (--allow_delete: over the session's sample collection,
    keyed by paper ids by default), a 409 over a collection keyed by corpus lines (--primary_key line); in-process
    (FastAPI's TestClient), nothing deleted."""
    from fastapi.testclient import TestClient

    from recall.milvus import insert
    from search.system import SearchSystem
    from search.web.app import create_app
    from search.web.settings import Settings

    lines_uri = str(tmp_path / "lines.db")
    corpus, npy = living["files"]["base"]
    assert insert.main(["--data_path", corpus, "--embedding_path", npy, "--uri", lines_uri, "--primary_key", "line"])
    cases = (
        (SearchSystem.from_pipeline(papers_pipeline, mode="bm25"), False, 403, "--allow_delete"),
        (SearchSystem.from_pipeline(papers_pipeline, mode="bm25", uri=lines_uri), True, 409, "keyed by corpus lines"),
    )
    for system, allow, status, said in cases:
        with system:
            documents = system.documents()
            settings = Settings(model_name="(none)", reranker_name=None, max_seq_length=64, allow_delete=allow)
            client = TestClient(create_app(system, settings), base_url="http://127.0.0.1")
            answer = client.post("/api/delete", json={"ids": ["sample-00001"]})
            assert answer.status_code == status and said in answer.json()["error"]
            assert system.documents() == documents
