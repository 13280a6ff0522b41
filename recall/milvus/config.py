"""Milvus settings: recall/milvus/config.yml holds the defaults, --config another YAML file, and every key
is also a flag (--uri, --collection, --index_type, ...) that wins over both."""

import os
from dataclasses import dataclass

import yaml

from ns_common.cli import str_to_bool
from ns_common.errors import ConfigError

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.yml")
# AUTO: HNSW on a server, FLAT where the engine runs in local mode (store.choose_dense_index)
INDEX_TYPES = ("AUTO", "HNSW", "IVF_FLAT", "FLAT")
METRIC_TYPES = ("IP", "COSINE", "L2")
# char_ngram: the client writes each text's character uni+bigrams into a field of its own under the `standard`
# tokenizer (the keyword-search bar); jieba / standard: Milvus analyses the text field itself
ANALYZERS = ("char_ngram", "jieba", "standard")
# line: the primary key is the corpus line (the collection is rebuilt whole); paper_id: derived from each paper
# record's own id (recall.milvus.store.paper_key), so papers are added, changed and deleted by id
PRIMARY_KEYS = ("line", "paper_id")


@dataclass
class MilvusConfig:
    uri: str
    token: str
    collection: str
    partition: str
    dim: int | None
    metric_type: str
    index_type: str
    hnsw_m: int
    hnsw_ef_construction: int
    ivf_nlist: int | None
    search_ef: int
    search_nprobe: int
    text_max_length: int
    batch_size: int
    bm25: bool
    analyzer: str
    bm25_k1: float
    bm25_b: float
    hybrid_candidates: int
    rrf_k: int
    primary_key: str = "paper_id"

    @property
    def is_lite(self):
        return is_lite_uri(self.uri)

    def bm25_settings(self):
        """Build parameters of the BM25 sparse index."""
        return {"bm25_k1": self.bm25_k1, "bm25_b": self.bm25_b}

    def search_params(self, index_type, top_k):
        """Search parameters for a request of top_k hits over a dense index of index_type (the one the collection
        stores: store.describe reads it back)."""
        if index_type == "HNSW":
            return {"metric_type": self.metric_type, "params": {"ef": max(self.search_ef, top_k)}}
        if index_type == "IVF_FLAT":
            return {"metric_type": self.metric_type, "params": {"nprobe": self.search_nprobe}}
        return {"metric_type": self.metric_type, "params": {}}


def is_lite_uri(uri):
    """A local .db file (embedded Milvus Lite) rather than a server address."""
    return not uri.lower().startswith(("http://", "https://", "tcp://", "unix:"))


def database_input(args):
    """[("uri", path)] for a command's Milvus Lite database (the flag, else --config's or config.yml's), an input that
    no output may overwrite (ns_common.cli.check_outputs); [] for a server address."""
    uri = getattr(args, "uri", None)
    if uri is None:
        try:
            uri = load_config(args).uri
        except ConfigError:
            return []  # the command's own load_config names what is wrong
    return [("uri", uri)] if is_lite_uri(uri) else []


def _optional_int(text):
    return None if str(text).lower() in ("", "none", "null", "auto") else int(text)


# flag type and help of each key (the default values live in config.yml)
SETTINGS = {
    "uri": (str, "Milvus Lite file (*.db) or server address http://host:19530"),
    "token": (str, "credentials of a server with authentication: user:password or an API key"),
    "collection": (str, "collection name"),
    "partition": (str, "partition name ('' = default partition)"),
    "dim": (_optional_int, "embedding size (default: from the .npy / the model; checked when given)"),
    "metric_type": (str, f"one of {', '.join(METRIC_TYPES)}"),
    "index_type": (str, f"one of {', '.join(INDEX_TYPES)}"),
    "hnsw_m": (int, "HNSW M (graph degree)"),
    "hnsw_ef_construction": (int, "HNSW efConstruction"),
    "ivf_nlist": (_optional_int, "IVF_FLAT nlist (default: 4 sqrt(corpus size))"),
    "search_ef": (int, "HNSW search ef (at least top_k)"),
    "search_nprobe": (int, "IVF_FLAT search nprobe"),
    "text_max_length": (int, "characters of each text stored in Milvus"),
    "batch_size": (int, "rows per insert request"),
    "bm25": (str_to_bool, "add the BM25 sparse field where the server supports it (true/false)"),
    "analyzer": (str, f"BM25 analyzer: {', '.join(ANALYZERS)}"),
    "bm25_k1": (float, "BM25 k1 (term-frequency saturation)"),
    "bm25_b": (float, "BM25 b (length normalisation, 0..1)"),
    "hybrid_candidates": (int, "hits taken from each route before hybrid RRF fusion"),
    "rrf_k": (int, "k of reciprocal rank fusion"),
    "primary_key": (
        str,
        "what names a paper in a new collection: paper_id (the default: the records' own ids, papers added, changed "
        "and deleted by id; a file without ids is keyed by line, said in one line) or line (its corpus line; rebuilt "
        "whole); an existing collection keeps its own",
    ),
}


def add_config_args(parser, skip=()):
    """Adds --config and one flag per setting (default None: the YAML value applies).
    skip: settings whose flag name the script already uses for something else (e.g. batch_size)."""
    group = parser.add_argument_group("Milvus settings (defaults: recall/milvus/config.yml)")
    group.add_argument("--config", default=DEFAULT_CONFIG, help="YAML file with Milvus settings")
    for key, (type_, help_) in SETTINGS.items():
        if key not in skip:
            group.add_argument(f"--{key}", type=type_, default=None, help=help_)
    return parser


def _read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f"--config {path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})")  # noqa: B904
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected key: value pairs")
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"--config {path}: unknown setting {unknown[0]!r} (known: {', '.join(SETTINGS)})")
    return values


def load_config(args=None, **overrides):
    """Defaults from config.yml, then the file of --config, then flags, then keyword overrides."""
    values = _read_yaml(DEFAULT_CONFIG)
    config_file = getattr(args, "config", None) or DEFAULT_CONFIG
    if os.path.abspath(config_file) != DEFAULT_CONFIG:
        check_config_text(config_file)
        values.update(_read_yaml(config_file))
    for key, (type_, _) in SETTINGS.items():
        flag = getattr(args, key, None) if args is not None else None
        if flag is not None:
            values[key] = flag
        elif values.get(key) is not None and type_ in (int, float, str_to_bool, _optional_int):
            values[key] = type_(values[key])  # YAML may hold "16" or "yes"
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["token"] = values.get("token") or ""
    values["partition"] = values.get("partition") or ""
    config = MilvusConfig(**values)
    validate(config)
    return config


def validate(config):
    config.index_type = config.index_type.upper()
    config.metric_type = config.metric_type.upper()
    if config.index_type not in INDEX_TYPES:
        raise ConfigError(f"--index_type {config.index_type}: expected one of {', '.join(INDEX_TYPES)}")
    if config.metric_type not in METRIC_TYPES:
        raise ConfigError(f"--metric_type {config.metric_type}: expected one of {', '.join(METRIC_TYPES)}")
    if config.primary_key not in PRIMARY_KEYS:
        raise ConfigError(f"--primary_key {config.primary_key}: expected one of {', '.join(PRIMARY_KEYS)}")
    if config.analyzer not in ANALYZERS:
        raise ConfigError(f"--analyzer {config.analyzer}: expected one of {', '.join(ANALYZERS)}")
    if not (0 < config.bm25_k1 < 100 and 0 <= config.bm25_b <= 1):
        raise ConfigError(
            f"--bm25_k1 {config.bm25_k1} / --bm25_b {config.bm25_b}: expected 0 < k1 < 100 and 0 <= b <= 1"
        )
    if not config.collection or not config.collection.replace("_", "a").isalnum() or config.collection[0].isdigit():
        raise ConfigError(
            f"--collection {config.collection!r}: use letters, digits and underscores, not starting with a digit"
        )
    if config.ivf_nlist is not None and not 1 <= config.ivf_nlist <= 65536:
        raise ConfigError(f"--ivf_nlist must be between 1 and 65536, got {config.ivf_nlist}")
    for key in (
        "hnsw_m",
        "hnsw_ef_construction",
        "search_ef",
        "search_nprobe",
        "text_max_length",
        "batch_size",
        "hybrid_candidates",
        "rrf_k",
    ):
        if getattr(config, key) <= 0:
            raise ConfigError(f"--{key} must be positive, got {getattr(config, key)}")
    if config.dim is not None and config.dim <= 0:
        raise ConfigError(f"--dim must be positive, got {config.dim}")
    if config.is_lite and not config.uri.endswith(".db"):
        raise ConfigError(
            f"--uri {config.uri}: a Milvus Lite file must end in .db, a server address must start with http:// or https://"
        )


def check_config_text(path):
    """ConfigError when --config is not UTF-8 text (a binary file, a Latin-1 file): one line, not a UnicodeDecodeError."""
    from ns_common.errors import ConfigError

    if not os.path.isfile(path):
        return  # _read_yaml names the missing file
    try:
        with open(path, "rb") as f:
            f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"--config {path}: not UTF-8 text (byte {e.start}): expected a YAML file of key: value pairs"
        ) from None
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot be read ({e.strerror})") from None
