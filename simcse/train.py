"""Unsupervised SimCSE training of the semantic index model.

    python simcse/train.py --train_set_file data/sample/recall/train_unsupervised.csv \
        --model_name_or_path output/domain_pretrain/final --save_dir checkpoints/simcse

Each text is encoded twice with dropout as the only difference; the two views of a text are a
positive pair, the other texts of the batch its negatives. With --dev_set_file and --corpus_file,
Recall@K on the dev pairs is measured every --eval_steps and after each epoch, and the best model
is kept in save_dir/model_best/. Also runs under `python -m paddle.distributed.launch`.
"""

import argparse

from ns_common.cli import entry_point, fail
from ns_common.contrastive import add_contrastive_args, train_contrastive
from ns_common.train_utils import add_train_args, check_train_args
from ns_common.utils import leave_together
from simcse.data import SimCSECollator, read_simcse_texts
from simcse.model import SimCSE


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_set_file", required=True, help="one text a line (recall/train_unsupervised.csv)")
    add_train_args(
        parser, save_dir="./checkpoints/simcse", batch_size=64, learning_rate=3e-4, epochs=1, warmup_proportion=0.1
    )
    add_contrastive_args(
        parser, dropout=0.1, dropout_help="dropout of the backbone and of the pooled output: the SimCSE augmentation"
    )
    parser.add_argument(
        "--dup_rate",
        type=float,
        default=0.0,
        help="word repetition (ESimCSE): repeat up to this share of each view's tokens (0: off)",
    )
    parser.add_argument(
        "--second_view",
        choices=("dropout", "keywords"),
        default="dropout",
        help="dropout: each text twice (SimCSE); keywords: the text and 2-5 of its words joined by spaces (a pseudo keyword query)",
    )
    parser.add_argument(
        "--dev_set_file", default=None, help="optional query<TAB>doc pairs for Recall@K during training"
    )
    args = parser.parse_args(argv)
    check_train_args(
        args,
        files=[
            ("train_set_file", args.train_set_file),
            ("dev_set_file", args.dev_set_file),
            ("corpus_file", args.corpus_file),
        ],
    )
    if bool(args.dev_set_file) != bool(args.corpus_file):
        fail("--dev_set_file and --corpus_file go together (evaluation searches the dev queries in the corpus)")
    if not 0 <= args.dropout < 1:
        fail(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 <= args.dup_rate <= 1:
        fail(f"--dup_rate must be in [0, 1], got {args.dup_rate}")
    return args


@entry_point
def main(argv=None):
    args = parse_args(argv)
    texts = read_simcse_texts(args.train_set_file)

    def collator(tokenizer):
        return SimCSECollator(tokenizer, args.max_seq_length, args.dup_rate, args.seed, args.second_view)  # noqa: E731

    summary = train_contrastive(args, SimCSE, texts, collator, "texts", args.dev_set_file)
    leave_together()  # under paddle.distributed.launch the process ends here
    return summary


if __name__ == "__main__":
    main()
