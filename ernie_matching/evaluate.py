"""AUC of a scorer on a labelled pair file (query<TAB>title<TAB>label with a header: sort/dev_pairwise.csv).

    # the reranker (a training checkpoint, or --model_dir of an exported one)
    python ernie_matching/evaluate.py --test_file data/sample/sort/test_pairwise.csv \
        --params_path checkpoints/ernie_matching/model_best
    # the recall model's cosine similarity as the scorer, for comparison (PaddleNLP: 0.801 vs 0.582)
    python ernie_matching/evaluate.py --test_file data/sample/sort/test_pairwise.csv --scorer cosine \
        --model_name_or_path <recall backbone> --params_path checkpoints/inbatch/model_best --output_emb_size 256
"""

import argparse
import json
import os

import numpy as np

from ns_common.cli import check_outputs, entry_point, fail, model_inputs
from ns_common.io import DataFileError, read_pairwise_labeled
from ns_common.metrics import auc
from ns_common.predictor import add_inference_args
from ns_common.utils import Timer, logger, quiet_paddlenlp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test_file", required=True, help="query<TAB>title<TAB>label with a header line")
    parser.add_argument(
        "--scorer",
        choices=("reranker", "cosine"),
        default="reranker",
        help="reranker: the pairwise model's probability; cosine: a recall model's query/title cosine",
    )
    parser.add_argument("--model_dir", default=None, help="reranker exported by export_model.py (Paddle Inference)")
    parser.add_argument(
        "--params_path",
        "--init_from_ckpt",
        dest="params_path",
        default=None,
        help="checkpoint (model_state.pdparams or its directory): the reranker's, or with --scorer cosine the recall model's",
    )
    parser.add_argument(
        "--model_name_or_path",
        default=None,
        help="backbone of the checkpoint (default for the reranker: the checkpoint directory; required for --scorer cosine)",
    )
    parser.add_argument(
        "--output_emb_size", type=int, default=0, help="--scorer cosine: the recall model's projection size (0: none)"
    )
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    add_inference_args(
        parser
    )  # with --model_dir: --cpu_threads, --enable_mkldnn (default on) / --no-enable_mkldnn, --precision
    parser.add_argument("--results_file", default=None, help="also append the result as one JSON line to this file")
    args = parser.parse_args(argv)
    if args.scorer == "reranker" and not (args.model_dir or args.params_path):
        fail("give --model_dir (an exported reranker) or --params_path (a reranker checkpoint)")
    if args.scorer == "cosine" and not args.model_name_or_path:
        fail(
            "--scorer cosine needs --model_name_or_path (the recall model's backbone), and --params_path for its trained weights"
        )
    if args.model_dir and not os.path.isdir(args.model_dir):
        fail(f"--model_dir {args.model_dir}: no such directory")
    check_outputs(
        files=[("results_file", args.results_file)], inputs=[("test_file", args.test_file), *model_inputs(args)]
    )
    return args


def cosine_scores(args, queries, titles):
    from ns_common.semantic import embed_texts, load_encoder
    from ns_common.utils import set_device

    set_device(args.device)
    model, tokenizer = load_encoder(args.model_name_or_path, args.params_path, args.output_emb_size)
    q = embed_texts(model, tokenizer, queries, args.max_seq_length, args.batch_size, role="query")
    t = embed_texts(model, tokenizer, titles, args.max_seq_length, args.batch_size, role="doc")
    return np.sum(q * t, axis=1)


@entry_point
def main(argv=None):
    args = parse_args(argv)
    quiet_paddlenlp()
    try:
        rows = list(read_pairwise_labeled(args.test_file))
    except DataFileError as e:
        fail(str(e))
    labels = [label for _, _, label in rows]
    n_pos = sum(labels)
    if n_pos == 0 or n_pos == len(rows):
        fail(
            f"--test_file {args.test_file}: AUC needs positive and negative pairs, found {n_pos} positive, {len(rows) - n_pos} negative"
        )
    queries, titles = [q for q, _, _ in rows], [t for _, t, _ in rows]

    if args.scorer == "cosine":
        timer = Timer()
        scores = cosine_scores(args, queries, titles)
        pairs_per_s = len(rows) / timer.seconds  # model loading included
    else:
        from ernie_matching.reranker import Reranker

        reranker = Reranker.from_args(args)
        scores = reranker.score_pairs(queries, titles)
        pairs_per_s = reranker.pairs_per_s
    value = auc(labels, scores)
    model = args.model_dir or args.params_path or args.model_name_or_path
    print(
        f"eval_{os.path.splitext(os.path.basename(args.test_file))[0]} auc: {value:.4f} "
        f"({args.test_file}, {args.scorer} {model}; {n_pos} positive, {len(rows) - n_pos} negative pairs; {pairs_per_s:.0f} pairs/s)"
    )
    if args.results_file:
        with open(args.results_file, "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "test_file": args.test_file,
                        "scorer": args.scorer,
                        "model": model,
                        "auc": value,
                        "positive": n_pos,
                        "negative": len(rows) - n_pos,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
        logger.info(f"appended to {args.results_file}")
    return value


if __name__ == "__main__":
    main()
