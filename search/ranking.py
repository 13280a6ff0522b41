"""A fitted ranking directory (search/fit.py's output): which signals rank BM25's candidates and the LightGBM models
that combine them. Ranking.load reads and checks it; SearchSystem (search/system.py) serves it; search/fit.py writes it.

    ranking.json        the spec: the lexical tier's features and model file, the neural tier's (when the fit kept
                        one), the cross-validation table, the models it was fitted with (weights sha1)
    lexical.txt, neural.txt   the LightGBM models (text format)
    lexical_stats.json  the corpus statistics of the lexical features (search.features.LexicalStats)
"""

import json
import os
from dataclasses import replace

import numpy as np

from ns_common.errors import ConfigError, ModelMismatchError
from ns_common.io import weights_fingerprint
from search.features import FEATURES, LexicalStats, lexical_features

RANKING_FILE = "ranking.json"
FORMAT = "learned-ranking-1"
# the neural model's inputs: the lexical model's score and the neural signals, or the lexical features themselves
# beside them (one model over both: search/fit.py's joint set)
NEURAL_FEATURES = ["lexical_score", "cosine", "cosine_rank", "cosine_gap", "rank_fusion", "rerank_logit"]
NEURAL_INPUTS = NEURAL_FEATURES + FEATURES
DENSE_FEATURES = {"cosine", "cosine_rank", "cosine_gap", "rank_fusion"}
RRF_K = 60  # reciprocal-rank fusion's constant (Milvus' RRFRanker default)


def default_ranking_dir(model_dir) -> str | None:
    """Where the pipeline puts the ranking: `ranking` beside the recall model's export (export/ranking)."""
    return os.path.join(os.path.dirname(os.path.normpath(model_dir)), "ranking") if model_dir else None


class Ranking:
    """A fitted ranking directory (search/fit.py): which signals rank, and the models that combine them."""

    def __init__(self, directory, spec, stats, lexical_model=None, neural_model=None):
        self.directory, self.spec, self.stats = directory, spec, stats
        self.lexical_model, self.neural_model = lexical_model, neural_model

    @classmethod
    def load(cls, directory, model_dir=None, reranker_dir=None) -> "Ranking":
        """Reads the directory; one-line errors when it is missing, not a ranking, or fitted with other models
        than the model_dir / reranker_dir given for the signals it uses."""
        from search.learn import check_ranking_file, load_ranking_model

        path = os.path.join(directory or "", RANKING_FILE)
        if not directory or not os.path.isfile(path):
            raise ConfigError(
                f"no fitted ranking at {directory}: fit one with python -m search.fit (the pipeline does, into "
                "<output>/export/ranking), or choose a leg with --mode dense|bm25|hybrid"
            )
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
            if spec.get("format") != FORMAT:
                raise ValueError(f"format {spec.get('format')!r}, expected {FORMAT!r}")
            # each file checked against its sha1 in ranking.json before it is read (a damaged one aborts LightGBM)
            checksums = spec.get("sha1")
            stats = LexicalStats.load(check_ranking_file(directory, spec["stats_file"], checksums, path))
            lexical, neural = (
                load_ranking_model(directory, spec[part], checksums, known, path) if spec[part] else None
                for part, known in (("lexical", FEATURES), ("neural", NEURAL_INPUTS))
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelMismatchError(  # noqa: B904
                f"{path}: not a ranking written by search.fit of this version ({type(e).__name__}: {e}); refit it "
                "(python -m search.fit)"
            )
        ranking = cls(directory, spec, stats, lexical, neural)
        for key, given, flag in (
            ("recall_model", model_dir, "--model_dir"),
            ("reranker", reranker_dir, "--reranker_dir"),
        ):
            fitted = spec["fitted_with"].get(key)
            if given and ranking.needs(key) and fitted != weights_fingerprint(given):
                raise ModelMismatchError(
                    f"{path} was fitted with another {key.replace('_', ' ')} than {flag} {given}: refit it "
                    "(python -m search.fit) or pass the models it was fitted with"
                )
        return ranking

    @property
    def chosen(self) -> str:
        """ "bm25" (BM25's order), "lexical" (the lexical model) or "neural" (the lexical model, then the neural one)."""
        return self.spec["chosen"]

    @property
    def neural_features(self) -> list:
        return self.spec["neural"]["features"] if self.neural_model is not None else []

    @property
    def dense_candidates(self) -> int:
        """The dense leg's top k united with BM25's candidates (united_pool); 0: BM25's candidates alone."""
        return int(self.spec["neural"].get("dense_candidates", 0)) if self.neural_model is not None else 0

    @property
    def uses_dense(self) -> bool:
        return bool(DENSE_FEATURES & set(self.neural_features))

    @property
    def uses_reranker(self) -> bool:
        return "rerank_logit" in self.neural_features

    def needs(self, component) -> bool:
        """Whether serving this ranking needs the "recall_model" (query vectors) or the "reranker"."""
        return self.uses_dense if component == "recall_model" else self.uses_reranker

    def check_corpus(self, collection_meta, where) -> None:
        """The lexical statistics must be the collection's corpus: another one gives wrong features, silently."""
        built = (collection_meta or {}).get("corpus")
        if built and built.get("sha1") != self.stats.sha1:
            raise ModelMismatchError(
                f"{os.path.join(self.directory, RANKING_FILE)} was fitted on another corpus "
                f"({self.stats.n_docs} documents, sha1 {self.stats.sha1[:12]}) than the collection at {where} "
                f"holds ({built.get('documents')} documents, sha1 "
                f"{str(built.get('sha1'))[:12]}): refit it (python -m search.fit) on that collection"
            )

    def stale_statistics(self, papers) -> str | None:
        """The one-line warning for lexical statistics counted over another number of papers than the collection holds
        now (a living index updated since: its document frequencies and mean lengths drift), naming the refresh; None
        when the counts agree."""
        if papers == self.stats.n_docs:
            return None
        return (
            f"{os.path.join(self.directory, 'lexical_stats.json')}: lexical statistics of {self.stats.n_docs} papers, the "
            f"collection holds {papers} now: refresh them with python -m search.refresh_stats --ranking_dir "
            f"{self.directory} --uri ..."
        )

    def lexical_matrix(self, query, hits) -> np.ndarray | None:
        """[n, len(FEATURES)] lexical features of the candidates (None when no model reads them: BM25's order)."""
        if self.lexical_model is None and not set(FEATURES) & set(self.neural_features):
            return None
        bm25 = np.array([h.score for h in hits], dtype=np.float64)
        return lexical_features(query, [h.text for h in hits], bm25, self.stats)

    def _lexical_inputs(self, matrix) -> np.ndarray:
        """The lexical model's columns of a lexical_matrix."""
        return matrix[:, [FEATURES.index(name) for name in self.spec["lexical"]["features"]]]

    def explain(self, matrix, neural_inputs, rows) -> list:
        """For the hits at `rows`: {"model": "lexical" | "neural", "bias": b, "contributions": {feature: c}}, LightGBM's
        per-feature contributions (SHAP values) of the model whose score ranks them, so bias + sum(contributions)
        is the hit's score; None for BM25's own order (no model). neural_inputs: the neural model's matrix."""
        if self.neural_model is not None:
            model, names, inputs = self.neural_model, self.neural_features, neural_inputs
        elif self.lexical_model is not None:
            model, names, inputs = self.lexical_model, self.spec["lexical"]["features"], self._lexical_inputs(matrix)
        else:
            return [None for _ in rows]
        contributions = model.predict(inputs[rows], pred_contrib=True, num_threads=1)
        return [
            {
                "model": "neural" if model is self.neural_model else "lexical",
                "bias": round(float(row[-1]), 6),
                "contributions": {name: round(float(value), 6) for name, value in zip(names, row[:-1])},
            }
            for row in np.atleast_2d(contributions)
        ]

    def lexical_scores(self, hits, matrix) -> np.ndarray | None:
        """The lexical model's score of each hit (BM25's own score where no lexical model was kept); None when a
        neural model ranks without reading it (its inputs hold neither the lexical score nor the rank fusion)."""
        if self.neural_model is not None and not {"lexical_score", "rank_fusion"} & set(self.neural_features):
            return None
        if self.lexical_model is None:
            return np.array([h.score for h in hits], dtype=np.float64)
        return self.lexical_model.predict(self._lexical_inputs(matrix), num_threads=1)


def united_pool(bm25_found, dense_found) -> list:
    """The candidates of one query when the fit united the legs: BM25's, as found, then the dense leg's whose title is
    not among them, in the dense order, each with a BM25 score of 0 (what the lexical features see of a title BM25
    did not rank: bm25_rel 0, bm25_rank after BM25's). Both lists and the result: [(Hit, stored vector), ...]."""
    seen = {hit.text for hit, _ in bm25_found}
    extra = []
    for hit, vector in dense_found:
        if hit.text not in seen:
            seen.add(hit.text)
            extra.append((replace(hit, score=0.0), vector))
    return list(bm25_found) + extra


def neural_matrix(names, lexical_score, cosine=None, rerank_logit=None, lexical=None) -> np.ndarray:
    """[n, len(names)] inputs of the neural model: the lexical score, the dense cosine, its 1-based rank among the
    candidates, its gap to the best candidate's cosine and the reranker's logit (a signal not computed: absent from
    names), and the lexical features by name from lexical, a Ranking.lexical_matrix ([n, len(FEATURES)])."""
    columns = {"lexical_score": lexical_score}
    if lexical is not None:
        columns.update({name: lexical[:, j] for j, name in enumerate(FEATURES)})
    if cosine is not None:
        columns["cosine"] = cosine
        columns["cosine_rank"] = np.argsort(np.argsort(-cosine, kind="stable"), kind="stable") + 1.0
        columns["cosine_gap"] = cosine - (cosine.max() if len(cosine) else 0.0)
        if "rank_fusion" in names:  # the two orders fused by reciprocal rank (a low-variance combination for trees)
            lexical_rank = np.argsort(np.argsort(-np.asarray(lexical_score), kind="stable"), kind="stable") + 1.0
            columns["rank_fusion"] = 1.0 / (RRF_K + lexical_rank) + 1.0 / (RRF_K + columns["cosine_rank"])
    if rerank_logit is not None:
        columns["rerank_logit"] = rerank_logit
    return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])


def rerank_logits(reranker, query, texts) -> np.ndarray:
    """The reranker's logit of each (query, text): its probability, back on the scale trees split well."""
    probs = np.clip(np.asarray(reranker.score(query, texts), dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(probs) - np.log1p(-probs)
