"""PaddleNLP's `ranking/ernie_matching/deploy/python/predict.py`: the reranker exported by export_model.py,
run with Paddle Inference over query<TAB>title pairs; prints each pair with its relevance probability.

    python ernie_matching/deploy/python/predict.py --model_dir output/ernie_matching \
        --input_file data/sample/sort/test_pairwise.csv --batch_size 32 --max_seq_length 64 --device cpu
    # Data: {'query': '...', 'title': '...'} 	 prob: 0.912345

PaddleNLP's flags: --model_dir, --max_seq_length, --batch_size, --device (cpu, gpu or gpu:N; default cpu
here, gpu in PaddleNLP), --precision (fp32, or bf16 on CPU), --cpu_threads, --enable_mkldnn (True/False),
--benchmark (also log the throughput); --use_tensorrt True is refused (no TensorRT here). PaddleNLP reads
the hard-coded `sort/test_pairwise.csv`; here --input_file (query<TAB>title[<TAB>label] lines, header
optional) defaults to the bundled sample's. --output_file also writes the JSON lines of predict_pairwise.py.
A thin wrapper over ernie_matching.reranker.Reranker(model_dir=...) (the same predictor as
predict_pairwise.py --model_dir, rerank_results.py and the web service).
"""

import argparse
import json
import os

from ernie_matching.data import read_pairs_to_score
from ernie_matching.reranker import Reranker
from ns_common.cli import entry_point, fail, str_to_bool
from ns_common.predictor import add_inference_args
from ns_common.utils import Timer, logger, quiet_paddlenlp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SAMPLE_PAIRS = os.path.join(REPO, "data", "sample", "sort", "test_pairwise.csv")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="directory written by ernie_matching/export_model.py")
    parser.add_argument(
        "--input_file",
        default=SAMPLE_PAIRS,
        help="query<TAB>title[<TAB>label] lines (default: the bundled sample's test_pairwise.csv)",
    )
    parser.add_argument("--output_file", default=None, help="also write {query, title, pred_prob} JSON lines here")
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    parser.add_argument(
        "--use_tensorrt", type=str_to_bool, default=False, help="PaddleNLP's flag; only False is supported here"
    )
    parser.add_argument(
        "--benchmark", type=str_to_bool, nargs="?", const=True, default=False, help="log the throughput"
    )
    add_inference_args(parser)  # --cpu_threads, --enable_mkldnn, --precision
    args = parser.parse_args(argv)
    if args.use_tensorrt:
        fail("--use_tensorrt True: TensorRT is not supported here; leave the flag out")
    if not os.path.isdir(args.model_dir):
        fail(f"--model_dir {args.model_dir}: no such directory")
    if args.max_seq_length < 3 or args.batch_size < 1:
        fail("--max_seq_length must be at least 3 and --batch_size at least 1")
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    quiet_paddlenlp()
    pairs = read_pairs_to_score(args.input_file)
    reranker = Reranker.from_args(args)
    timer = Timer()
    probs = reranker.score_pairs([q for q, _ in pairs], [t for _, t in pairs])
    for (query, title), prob in zip(pairs, probs):
        print(f"Data: {{'query': {query!r}, 'title': {title!r}}} \t prob: {float(prob):.6f}")
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            for (query, title), prob in zip(pairs, probs):
                f.write(
                    json.dumps({"query": query, "title": title, "pred_prob": round(float(prob), 6)}, ensure_ascii=False)
                    + "\n"
                )
    if args.benchmark:
        logger.info(
            f"{len(pairs)} pairs in {timer.seconds:.2f}s ({reranker.pairs_per_s:.0f} pairs/s), batch {args.batch_size}, "
            f"max_seq_length {args.max_seq_length}, device {args.device}, precision {args.precision}"
        )
    return probs


if __name__ == "__main__":
    main()
