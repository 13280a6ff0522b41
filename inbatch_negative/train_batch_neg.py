"""Supervised training of the semantic index model with in-batch negatives.

    python inbatch_negative/train_batch_neg.py --train_set_file data/sample/recall/train.csv \
        --model_name_or_path output/domain_pretrain/final --init_from_ckpt checkpoints/simcse/model_final \
        --save_dir checkpoints/inbatch --evaluate --similar_text_pair_file data/sample/recall/dev.csv \
        --corpus_file data/sample/recall/corpus.csv

Each query's doc is its positive; the other docs of the batch (and, with --hard_negative_file, the
batch's mined hard negatives) are its negatives. --init_from_ckpt starts from a SimCSE checkpoint (the
chain SimCSE -> in-batch). With --evaluate, Recall@K on the dev pairs after every epoch (and every
--eval_steps), the best Recall@5 model kept as save_dir/model_best/. Also runs under
`python -m paddle.distributed.launch`.
"""

import argparse

from inbatch_negative.data import InBatchCollator, attach_negatives, read_hard_negatives, read_train_pairs
from inbatch_negative.model import SemanticIndexBatchNeg
from ns_common.cli import entry_point, fail
from ns_common.contrastive import add_contrastive_args, train_contrastive
from ns_common.train_utils import add_train_args, check_train_args
from ns_common.utils import leave_together


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_set_file", required=True, help="query<TAB>doc pairs (recall/train.csv)")
    add_train_args(
        parser, save_dir="./checkpoints/inbatch", batch_size=64, learning_rate=3e-4, epochs=10, warmup_proportion=0.1
    )
    add_contrastive_args(parser, margin=0.2, scale=30.0)
    parser.add_argument(
        "--hard_negative_file", default=None, help="query<TAB>pos<TAB>neg triples from mine_hard_negatives.py"
    )
    parser.add_argument(
        "--negatives_per_query", type=int, default=1, help="hard negatives a training pair adds to its batch"
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="Recall@K on --similar_text_pair_file after every epoch; keep the best model",
    )
    parser.add_argument(
        "--similar_text_pair_file",
        "--similar_text_pair",
        dest="similar_text_pair_file",
        default=None,
        help="dev query<TAB>doc pairs",
    )
    args = parser.parse_args(argv)
    check_train_args(
        args,
        files=[
            ("train_set_file", args.train_set_file),
            ("hard_negative_file", args.hard_negative_file),
            ("similar_text_pair_file", args.similar_text_pair_file),
            ("corpus_file", args.corpus_file),
        ],
    )
    if args.evaluate and not (args.similar_text_pair_file and args.corpus_file):
        fail("--evaluate needs --similar_text_pair_file and --corpus_file")
    if args.negatives_per_query < 0:
        fail(f"--negatives_per_query must be >= 0, got {args.negatives_per_query}")
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    examples = read_train_pairs(args.train_set_file)
    if args.hard_negative_file:
        attach_negatives(examples, read_hard_negatives(args.hard_negative_file))
    collator = lambda tokenizer: InBatchCollator(tokenizer, args.max_seq_length, args.negatives_per_query, args.seed)  # noqa: E731
    dev_pair_file = args.similar_text_pair_file if args.evaluate else None
    summary = train_contrastive(args, SemanticIndexBatchNeg, examples, collator, "pairs", dev_pair_file)
    leave_together()  # under paddle.distributed.launch the process ends here
    return summary


if __name__ == "__main__":
    main()
