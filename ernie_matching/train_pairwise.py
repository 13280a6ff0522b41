"""Trains the ERNIE-Gram pairwise reranker on (query, title, neg_title) triples.

    python ernie_matching/train_pairwise.py \
        --model_name_or_path output/domain_pretrain/ernie-gram/final \
        --train_file data/sample/sort/train_pairwise.csv --test_file data/sample/sort/dev_pairwise.csv \
        --save_dir checkpoints/ernie_matching --epochs 3 --eval_step 50

Each triple scores (query, title) and (query, neg_title) with the same cross-encoder, in one forward
pass; --loss margin (PaddleNLP's, the default): mean(max(0, margin - (p_pos - p_neg))) on the
probabilities; --loss logistic: mean(log(1 + exp(s_neg - s_pos))) on the logits (trains a from-scratch
backbone where the margin loss stalls, see the README, "Reranking").
AUC on --test_file (query, title, label) every --eval_step steps and after each epoch; the best AUC
checkpoint is kept in save_dir/model_best/ (model_state.pdparams, tokenizer files, backbone config.json).
Runs under `python -m paddle.distributed.launch --nproc_per_node 2` too (rank 0 evaluates and saves).
"""

import argparse
import os

import numpy as np
import paddle

import ns_common  # noqa: F401  (first: its warning filters quiet paddle's import)
from ernie_matching.data import PairEncoder, PairwiseDataset, pairwise_collate
from ernie_matching.model import LOSSES, load_matching_model
from ns_common.checkpoint import load_checkpoint
from ns_common.cli import entry_point, fail
from ns_common.io import DataFileError, read_pairwise_labeled, read_pairwise_train
from ns_common.metrics import auc
from ns_common.text import batches
from ns_common.train_utils import add_train_args, build_dataloader, check_train_args, train
from ns_common.utils import is_main_process, leave_together, logger, start_training


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_args(
        parser, save_dir="./checkpoints/ernie_matching", batch_size=32, learning_rate=5e-5, epochs=3, eval_steps=100
    )
    parser.add_argument(
        "--train_file",
        required=True,
        nargs="+",
        help="query<TAB>title<TAB>neg_title with a header line (sort/train_pairwise.csv); several files are mixed",
    )
    parser.add_argument(
        "--test_file",
        required=True,
        help="query<TAB>title<TAB>label with a header line, for AUC (sort/dev_pairwise.csv)",
    )
    parser.add_argument(
        "--margin", type=float, default=0.1, help="the positive's probability must beat the negative's by this much"
    )
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default="margin",
        help="margin: PaddleNLP's margin ranking loss on the probabilities; logistic: RankNet's log(1+exp(-(s_pos-s_neg))) on the logits",
    )
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument(
        "--mark_matches",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="exact-match token types: query/title tokens that occur on the other side get their own "
        "token type (beyond PaddleNLP; --no-mark_matches for its plain pairs)",
    )
    # PaddleNLP's ernie_matching spells these two in the singular
    parser.add_argument(
        "--eval_step", dest="eval_steps", type=int, default=argparse.SUPPRESS, help="same as --eval_steps"
    )
    parser.add_argument(
        "--save_step", dest="save_steps", type=int, default=argparse.SUPPRESS, help="same as --save_steps"
    )
    args = parser.parse_args(argv)
    check_train_args(args, files=[("train_file", path) for path in args.train_file] + [("test_file", args.test_file)])
    if not 0 < args.margin < 1:
        fail(f"--margin {args.margin}: the scores are probabilities, so the margin must be in (0, 1)")
    return args


@paddle.no_grad()
def predict_probs(model, encoder, queries, titles, batch_size=128):
    """Relevance probabilities of (query, title) pairs with the dynamic model, in input order."""
    model.eval()
    probs = []
    for chunk in batches(list(zip(queries, titles)), batch_size):
        input_ids, token_type_ids = encoder.encode_batch([q for q, _ in chunk], [t for _, t in chunk])
        probs.append(model(paddle.to_tensor(input_ids), paddle.to_tensor(token_type_ids)).numpy())
    return np.concatenate(probs).astype(np.float32) if probs else np.zeros((0,), dtype=np.float32)


@entry_point
def main(argv=None):
    args = parse_args(argv)
    start_training(args)

    try:
        triples = [triple for path in args.train_file for triple in read_pairwise_train(path)]
        dev = list(read_pairwise_labeled(args.test_file))
    except DataFileError as e:
        fail(str(e))
    if not triples:
        fail(f"--train_file {' '.join(args.train_file)}: no valid query<TAB>title<TAB>neg_title rows")
    dev_labels = [label for _, _, label in dev]
    if len(set(dev_labels)) < 2:
        fail(f"--test_file {args.test_file}: AUC needs both labels, found only {set(dev_labels) or 'no rows'}")

    model, tokenizer = load_matching_model(
        args.model_name_or_path,
        margin=args.margin,
        dropout=args.dropout,
        loss=args.loss,
        mark_matches=args.mark_matches,
    )
    if args.init_from_ckpt:
        load_checkpoint(model, args.init_from_ckpt)

    encoder = PairEncoder(tokenizer, args.max_seq_length, mark_matches=model.mark_matches)
    train_set = PairwiseDataset(triples, encoder)
    loader = build_dataloader(train_set, args.batch_size, pairwise_collate(encoder))
    if is_main_process():
        n_pos = sum(dev_labels)
        logger.info(
            f"{len(train_set)} training triples, {args.batch_size} a step; dev {args.test_file}: {n_pos} positive, {len(dev) - n_pos} negative pairs"  # noqa: E501
        )

    def pairwise_loss(train_model, batch):
        input_ids, token_type_ids = batch  # B positive pairs, then their B negative pairs
        pos_logits, neg_logits = paddle.split(train_model(input_ids, token_type_ids, return_logits=True), 2)
        return model.pairwise_loss(pos_logits, neg_logits)

    def evaluate(eval_model):
        probs = predict_probs(eval_model, encoder, [q for q, _, _ in dev], [t for _, t, _ in dev])
        return {"auc": auc(dev_labels, probs)}

    summary = train(model, tokenizer, loader, args, evaluate=evaluate, best_metric="auc", loss_fn=pairwise_loss)
    if is_main_process():
        # the backbone's config.json next to the weights makes a checkpoint directory self-describing:
        # evaluate/predict/export/rerank then need only --params_path
        for name in ("model_best", "model_final", f"model_{summary['steps']}"):
            path = os.path.join(args.save_dir, name)
            if os.path.isdir(path):
                model.ptm.config.save_pretrained(path)
    leave_together()


if __name__ == "__main__":
    main()
