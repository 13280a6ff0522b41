"""Mines hard negatives for in-batch-negatives training: `query<TAB>pos<TAB>neg` triples.

    # lexical (model-free): BM25 over character unigrams + bigrams
    python inbatch_negative/mine_hard_negatives.py --method bm25 \
        --train_set_file data/sample/recall/train.csv --corpus_file data/sample/recall/corpus.csv \
        --output_file checkpoints/hard_negatives.tsv
    # dense: a trained model's recall (e.g. the SimCSE or a first in-batch model)
    python inbatch_negative/mine_hard_negatives.py --method model --model_name_or_path D \
        --params_path checkpoints/inbatch/model_best/model_state.pdparams ...

For each training pair the corpus is ranked for its query (the top --top_k documents) and negatives are
picked from that ranking by the project's one rule (ns_common/negatives.py): never a gold document of the
query or a text equal to one (case and whitespace aside); only what is ranked and scored below the gold,
or the whole ranking from the top when the gold is not in it; --strategy hardest takes the first eligible
candidates, random draws among them.
"""

import argparse
import random

from inbatch_negative.data import write_hard_negatives
from ns_common.cli import add_encoder_shape_args, check_files, check_outputs, entry_point, fail, model_inputs
from ns_common.io import read_corpus, read_similar_pairs, read_text_pairs
from ns_common.negatives import mine_negatives
from ns_common.recall import dense_recall
from ns_common.utils import Timer, logger, quiet_paddlenlp, set_device

STRATEGIES = ("random", "hardest")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_set_file", required=True, help="query<TAB>doc training pairs")
    parser.add_argument("--corpus_file", required=True, help="one document a line: where negatives come from")
    parser.add_argument("--output_file", required=True, help="query<TAB>pos<TAB>neg triples")
    parser.add_argument("--method", choices=("bm25", "model"), default="bm25")
    parser.add_argument("--top_k", type=int, default=30, help="candidates ranked for each query")
    parser.add_argument("--num_negatives", type=int, default=2, help="negatives per training pair")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="random",
        help="random: drawn among the eligible candidates; hardest: the best-ranked eligible ones",
    )
    parser.add_argument("--seed", type=int, default=1000)
    # --method model: the trained encoder
    parser.add_argument(
        "--model_name_or_path", default=None, help="(--method model) backbone directory of the trained model"
    )
    parser.add_argument(
        "--params_path", default=None, help="(--method model) model_state.pdparams of the trained model"
    )
    add_encoder_shape_args(parser)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    check_files(("train_set_file", args.train_set_file), ("corpus_file", args.corpus_file))
    check_outputs(
        files=[("output_file", args.output_file)],
        inputs=[("train_set_file", args.train_set_file), ("corpus_file", args.corpus_file), *model_inputs(args)],
    )
    if args.method == "model" and not (args.model_name_or_path and args.params_path):
        fail("--method model needs --model_name_or_path and --params_path (a trained recall model)")
    if args.top_k <= 0 or args.num_negatives <= 0:
        fail(f"--top_k and --num_negatives must be positive, got {args.top_k} and {args.num_negatives}")
    return args


def rank_corpus(args, queries, corpus):
    """(indices, scores) [Q, top_k] of each query's best documents, best first."""
    if args.method == "bm25":
        from ns_common.bm25 import BM25Index

        return BM25Index(corpus).search(queries, args.top_k)
    from ns_common.semantic import load_encoder

    quiet_paddlenlp()  # here: importing PaddleNLP costs seconds, and BM25 mining never needs it
    set_device(args.device)
    model, tokenizer = load_encoder(
        args.model_name_or_path, args.params_path, args.output_emb_size, pooling=args.pooling
    )
    return dense_recall(
        model, tokenizer, queries, corpus, args.top_k, args.max_seq_length, args.batch_size, progress=True
    )


def mine(pairs, corpus, gold, query_rank, num_negatives, strategy="random", seed=1000):
    """pairs: [(query, pos)]; gold: {query: set of docs}; query_rank: {query: (ids, scores)}.
    Returns (triples, counts)."""
    rng = random.Random(seed)
    triples = []
    counts = {"pairs": len(pairs), "with negatives": 0, "gold not retrieved": 0, "no eligible candidate": 0}
    for query, positive in pairs:
        ids, scores = query_rank[query]
        texts = [corpus[i] for i in ids]
        chosen, gold_rank = mine_negatives(
            texts, gold[query], num_negatives, scores=scores, hardest=strategy == "hardest", rng=rng
        )
        if gold_rank is None:
            counts["gold not retrieved"] += 1
        if not chosen:
            counts["no eligible candidate"] += 1
            continue
        triples += [(query, positive, texts[i]) for i in chosen]
        counts["with negatives"] += 1
    return triples, counts


@entry_point
def main(argv=None):
    args = parse_args(argv)
    pairs = list(read_text_pairs(args.train_set_file))
    queries, gold = read_similar_pairs(args.train_set_file)
    corpus = read_corpus(args.corpus_file)
    if not pairs or not corpus:
        fail(
            f"nothing to mine: {len(pairs)} pairs in {args.train_set_file}, {len(corpus)} documents in {args.corpus_file}"
        )
    timer = Timer()
    indices, scores = rank_corpus(args, queries, corpus)
    query_rank = {q: (list(map(int, i)), list(map(float, s))) for q, i, s in zip(queries, indices, scores)}
    triples, counts = mine(pairs, corpus, gold, query_rank, args.num_negatives, args.strategy, args.seed)
    n = write_hard_negatives(args.output_file, triples)
    logger.info(
        f"mined {n} hard negatives ({args.method}, top {args.top_k}, {args.strategy}) in {timer.seconds:.1f}s: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" -> {args.output_file}"
    )
    return counts


if __name__ == "__main__":
    main()
