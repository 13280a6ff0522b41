"""Scores (query, title) pairs: one JSON object `{"query", "title", "pred_prob"}` a line.

    python ernie_matching/predict_pairwise.py --params_path checkpoints/ernie_matching/model_best \
        --input_file data/sample/sort/test_pairwise.csv --output_file output/predict_pairwise.jsonl
    python ernie_matching/predict_pairwise.py --model_dir output/ernie_matching --input_file pairs.tsv

--input_file: `query<TAB>title` lines, further fields (a label, a recall score) ignored, with or
without a `query<TAB>title...` header. Output goes to --output_file, or to stdout without it.
"""

import argparse
import json
import os
import sys

from ernie_matching.data import read_pairs_to_score
from ernie_matching.reranker import Reranker, add_reranker_args, check_reranker_args
from ns_common.cli import check_outputs, entry_point, fail, model_inputs
from ns_common.text import batches
from ns_common.utils import Timer, logger, quiet_paddlenlp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input_file", required=True, help="query<TAB>title[<TAB>...] lines")
    parser.add_argument("--output_file", default=None, help="JSON lines output (default: stdout)")
    add_reranker_args(parser, batch_size=64)
    args = parser.parse_args(argv)
    check_outputs(
        files=[("output_file", args.output_file)], inputs=[("input_file", args.input_file), *model_inputs(args)]
    )
    check_reranker_args(args)
    if args.max_seq_length <= 0 or args.batch_size <= 0:
        fail("--max_seq_length and --batch_size must be positive")
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    quiet_paddlenlp()
    pairs = read_pairs_to_score(args.input_file)
    reranker = Reranker.from_args(args)
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    out = open(args.output_file, "w", encoding="utf-8") if args.output_file else sys.stdout  # noqa: SIM115
    timer = Timer()
    try:
        # written chunk by chunk: a long run that is stopped keeps what it finished
        for chunk in batches(pairs, 1024):
            probs = reranker.score_pairs([q for q, _ in chunk], [t for _, t in chunk])
            for (query, title), prob in zip(chunk, probs):
                out.write(
                    json.dumps({"query": query, "title": title, "pred_prob": round(float(prob), 6)}, ensure_ascii=False)
                    + "\n"
                )
            out.flush()
    finally:
        if args.output_file:
            out.close()
    where = args.output_file or "stdout"
    logger.info(f"scored {len(pairs)} pairs in {timer.seconds:.1f}s ({reranker.pairs_per_s:.0f} pairs/s) -> {where}")


if __name__ == "__main__":
    main()
