"""Recall@K, MRR@10 and nDCG@10 of a recall_result.txt against the gold pairs (the shared implementation
of simcse/evaluate.py and inbatch_negative/evaluate.py):

    python inbatch_negative/evaluate.py --similar_text_pair_file data/sample/recall/dev.csv \
        --recall_result_file recall_result_dir/recall_result.txt --recall_num 50 \
        --name inbatch --result_file results/recall_metrics.tsv --output_json results/inbatch.json

Every distinct query of the pair file counts (PaddleNLP's evaluate.py silently drops the last one); a
query missing from the result file counts as a miss. Recall@K is the share of queries with a gold doc
among their top K; K above --recall_num is not reported (it could not differ from Recall@recall_num).
"""

import argparse
import json
import os

from ns_common.cli import check_files, check_outputs, entry_point, fail
from ns_common.errors import BadInputError
from ns_common.io import atomic_write, read_corpus, read_recall_result, read_similar_pairs, write_recall_result
from ns_common.metrics import DEFAULT_KS, format_metrics, retrieval_metrics
from ns_common.utils import is_main_process, logger


def recall_metrics(queries, gold, ranked_docs, recall_num=None):
    """queries: distinct queries; gold: {query: set of docs}; ranked_docs: {query: [doc, ...]} best first."""
    depth = recall_num or max((len(v) for v in ranked_docs.values()), default=0)
    ks = tuple(k for k in DEFAULT_KS if k <= max(depth, 1))
    lists = [list(ranked_docs.get(q, []))[: depth or None] for q in queries]
    return retrieval_metrics(lists, [gold[q] for q in queries], ks=ks)


def evaluate_file(similar_text_pair_file, recall_result_file, recall_num=None):
    """Returns the metrics dict; logs a warning for queries without results."""
    queries, gold = read_similar_pairs(similar_text_pair_file)
    if not queries:
        raise BadInputError(f"{similar_text_pair_file}: no valid query<TAB>doc pairs")
    result = read_recall_result(recall_result_file)
    if not result:
        raise BadInputError(
            f"{recall_result_file}: no query<TAB>doc<TAB>score rows (empty, or not a recall result): nothing to evaluate"
        )
    missing = [q for q in queries if q not in result]
    if missing:
        logger.warning(
            f"{recall_result_file}: {len(missing)} of {len(queries)} queries have no results (counted as misses), e.g. {missing[0]!r}"
        )
    short = [q for q in queries if q in result and recall_num and len(result[q]) < recall_num]
    if short:
        logger.warning(f"{recall_result_file}: {len(short)} queries have fewer than --recall_num {recall_num} results")
    ranked = {q: [doc for doc, _ in rows] for q, rows in result.items()}
    return recall_metrics(queries, gold, ranked, recall_num)


def report(name, metrics, result_file=None, output_json=None):
    """Prints one table line; appends it to result_file and writes output_json when given."""
    line = format_metrics(name, metrics)
    print(line, flush=True)
    if result_file:
        os.makedirs(os.path.dirname(os.path.abspath(result_file)), exist_ok=True)
        with open(result_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    if output_json:
        os.makedirs(os.path.dirname(os.path.abspath(output_json)), exist_ok=True)
        with atomic_write(output_json) as f:
            json.dump({"name": name, **metrics}, f, indent=2, ensure_ascii=False)
    return line


class RecallEvaluator:
    """Evaluation during training: recall on the dev pairs against the corpus with the current model.

    Called as evaluator(model) -> metrics; also writes recall_result_dir/recall_result.txt when given."""

    def __init__(
        self,
        tokenizer,
        similar_text_pair_file,
        corpus_file,
        recall_num=50,
        max_seq_length=64,
        batch_size=64,
        recall_result_dir=None,
    ):
        self.queries, self.gold = read_similar_pairs(similar_text_pair_file)
        self.corpus = read_corpus(corpus_file)
        if not self.queries or not self.corpus:
            raise BadInputError(
                f"nothing to evaluate: {len(self.queries)} queries in {similar_text_pair_file}, "
                f"{len(self.corpus)} documents in {corpus_file}"
            )
        self.tokenizer = tokenizer
        self.recall_num = min(recall_num, len(self.corpus))
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.recall_result_dir = recall_result_dir

    def __call__(self, model):
        from ns_common.recall import dense_recall

        indices, scores = dense_recall(
            model, self.tokenizer, self.queries, self.corpus, self.recall_num, self.max_seq_length, self.batch_size
        )
        if self.recall_result_dir and is_main_process():
            write_recall_result(
                os.path.join(self.recall_result_dir, "recall_result.txt"), self.queries, self.corpus, indices, scores
            )
        ranked = {q: [self.corpus[j] for j in row] for q, row in zip(self.queries, indices)}
        return recall_metrics(self.queries, self.gold, ranked, self.recall_num)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--similar_text_pair_file",
        "--similar_text_pair",
        dest="similar_text_pair_file",
        required=True,
        help="query<TAB>gold doc",
    )
    parser.add_argument("--recall_result_file", required=True, help="query<TAB>doc<TAB>score, best first")
    parser.add_argument("--recall_num", type=int, default=50, help="rows a query to use (0: all rows)")
    parser.add_argument("--name", default=None, help="row label in the table (default: the result file's path)")
    parser.add_argument("--result_file", default=None, help="append the table line to this file")
    parser.add_argument("--output_json", default=None, help="also write the metrics as JSON here")
    args = parser.parse_args(argv)
    if args.recall_num < 0:
        fail(f"--recall_num must be >= 0, got {args.recall_num}")
    check_files(
        ("similar_text_pair_file", args.similar_text_pair_file), ("recall_result_file", args.recall_result_file)
    )
    check_outputs(
        files=[("result_file", args.result_file), ("output_json", args.output_json)],
        inputs=[
            ("similar_text_pair_file", args.similar_text_pair_file),
            ("recall_result_file", args.recall_result_file),
        ],
    )
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    metrics = evaluate_file(args.similar_text_pair_file, args.recall_result_file, args.recall_num or None)
    report(args.name or args.recall_result_file, metrics, args.result_file, args.output_json)
    return metrics


if __name__ == "__main__":
    main()
