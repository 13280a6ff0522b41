"""recall/milvus against a real Milvus server: pip `milvus==2.3.5` (Milvus standalone started by its
`milvus-server` launcher) with authentication on, on free loopback ports and a temporary data dir.

The server lives in its own venv (scripts/setup_milvus_server.sh; created here when missing). Milvus
2.3.5 has no BM25 function, so collections are dense only, with a notice. The vectors are synthetic
(normalised random, 32-dim): the client/server path does not depend on the model.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import opted_out, require

from ns_common.errors import ConfigError
from recall.milvus.local_server import DEFAULT_VENV, LocalMilvusServer, server_executable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, "data", "sample", "milvus", "milvus_data.csv")
TOKEN = "root:Milvus"  # Milvus' default root credentials

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.isfile(CORPUS), reason=f"bundled sample missing: {CORPUS}"),
]


@pytest.fixture(scope="module")
def server_venv():
    problem = f"no Milvus 2.3.5 server venv in {DEFAULT_VENV}"
    if not os.path.isfile(server_executable(DEFAULT_VENV)) and not opted_out(
        "milvus_server"
    ):  # install it (once, a minute)
        setup = subprocess.run(
            ["bash", os.path.join(REPO, "scripts", "setup_milvus_server.sh")], capture_output=True, text=True
        )
        problem += f" (installing it failed: {(setup.stderr.strip().splitlines() or ['?'])[-1]})"
    if not os.path.isfile(server_executable(DEFAULT_VENV)):
        require("milvus_server", problem)
    return DEFAULT_VENV


@pytest.fixture(scope="module")
def server(server_venv, tmp_path_factory):
    with LocalMilvusServer(str(tmp_path_factory.mktemp("milvus_server")), authorization=True) as running:
        yield running


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    with open(CORPUS, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    vectors = np.random.default_rng(0).standard_normal((n, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = str(tmp_path_factory.mktemp("server_vectors") / "corpus_embedding.npy")
    np.save(path, vectors)
    return path


def config_for(server, **overrides):
    from recall.milvus.config import load_config

    return load_config(**{"uri": server.uri, "token": TOKEN, **overrides})


def test_insert_resume_search_on_server(server, embeddings, caplog):
    from recall.milvus import insert, store
    from recall.milvus.search import MilvusSearcher, SearchError

    common = [
        "--data_path",
        CORPUS,
        "--embedding_path",
        embeddings,
        "--uri",
        server.uri,
        "--token",
        TOKEN,
        "--batch_size",
        "150",
    ]
    assert insert.main(common + ["--max_batches", "2"]) is None
    assert "has no BM25 function" in caplog.text  # 2.3.5: dense only, said once at creation
    config = config_for(server)
    client = store.connect(config)
    assert store.count_entities(client, config) == 300
    store.close(client, config)
    assert insert.main(common + ["--resume"]) == 500
    assert insert.main(common) == 500  # upsert by id: a rerun never duplicates

    vectors = np.load(embeddings)
    exact_top10 = np.argsort(-(vectors[:50] @ vectors.T), axis=1)[:, :10]
    with MilvusSearcher(config) as searcher:
        assert searcher.modes == ("dense",) and searcher.info.index_type == "HNSW"  # AUTO on a server
        hits = [searcher.search_by_id(i, top_k=10) for i in range(50)]
        with pytest.raises(SearchError, match="needs the BM25 field"):
            searcher.search("语言", mode="bm25")
    assert all(h[0].id == i and h[0].score == pytest.approx(1.0, abs=1e-4) for i, h in enumerate(hits))
    overlap = np.mean([len({h.id for h in row} & set(exact)) / 10 for row, exact in zip(hits, exact_top10)])
    assert overlap >= 0.99  # HNSW (M 16, ef 128) on 500 vectors: the exact neighbours


@pytest.mark.parametrize(
    "settings", [dict(index_type="HNSW", hnsw_m=8, hnsw_ef_construction=64), dict(index_type="IVF_FLAT", ivf_nlist=8)]
)
def test_index_settings_read_back_on_server(server, settings):
    from recall.milvus import store

    config = config_for(server, collection=f"settings_{settings['index_type'].lower()}", **settings)
    client = store.connect(config)
    info = store.create_collection(client, config, 32, with_bm25=False)
    stored = store.stored_index_params(client.describe_index(config.collection, index_name=store.DENSE_FIELD))
    assert stored == info.index_settings and stored  # e.g. {"M": 8, "efConstruction": 64}
    assert store.describe(client, config).index_settings == stored
    store.close(client, config)


def test_partition_and_ivf_flat_on_server(server, embeddings, capsys):
    from recall.milvus import insert
    from recall.milvus.search import MilvusSearcher

    argv = [
        "--data_path",
        CORPUS,
        "--embedding_path",
        embeddings,
        "--uri",
        server.uri,
        "--token",
        TOKEN,
        "--collection",
        "ivf_trial",
        "--partition",
        "titles",
        "--index_type",
        "IVF_FLAT",
        "--ivf_nlist",
        "8",
        "--search_nprobe",
        "8",
    ]
    assert insert.main(argv) == 500
    with MilvusSearcher(
        config_for(server, collection="ivf_trial", partition="titles", index_type="IVF_FLAT", search_nprobe=8)
    ) as searcher:
        assert searcher.search_by_id(123, top_k=1)[0].id == 123
    capsys.readouterr()
    with pytest.raises(
        ConfigError, match="no such partition.*titles"
    ):  # a partition that does not exist would silently find nothing
        MilvusSearcher(config_for(server, collection="ivf_trial", partition="titels"))


def test_server_refuses_wrong_or_missing_token(server, capsys):
    from recall.milvus import store

    for token, expected in (("root:wrong", "wrong --token"), ("", "it needs --token")):
        with pytest.raises(ConfigError) as error:
            store.connect(config_for(server, token=token))
        assert server.uri in str(error.value) and expected in str(error.value)
    client = store.connect(config_for(server))
    assert isinstance(client.list_collections(), list)


def test_local_server_cli_stops_milvus_on_sigterm(server_venv, tmp_path):
    """`kill PID` of the launcher CLI stops the Milvus it started (no orphaned server)."""
    data_dir = tmp_path / "cli_server"

    def milvus_running():
        return subprocess.run(["pgrep", "-f", "--", f"--data {data_dir}"], capture_output=True).returncode == 0

    with open(tmp_path / "cli.err", "w") as err:
        cli = subprocess.Popen(
            [sys.executable, "-m", "recall.milvus.local_server", "--data_dir", str(data_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        banner = cli.stdout.readline()  # printed once the server is ready
        assert "Milvus server at http://127.0.0.1:" in banner, (banner, (tmp_path / "cli.err").read_text()[-500:])
        assert milvus_running(), "no milvus-server process found for the CLI's data dir"
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=60) == 0
        deadline = time.time() + 30
        while milvus_running() and time.time() < deadline:
            time.sleep(0.5)
        assert not milvus_running(), "milvus-server outlived its launcher"
    finally:
        if cli.poll() is None:
            cli.kill()
