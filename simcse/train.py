"""Unsupervised SimCSE training of the semantic index model.

    python simcse/train.py --train_set_file data/sample/recall/train_unsupervised.csv \
        --model_name_or_path output/domain_pretrain/final --save_dir checkpoints/simcse

Each text is encoded twice with dropout as the only difference; the two views of a text are a
positive pair, the other texts of the batch its negatives. With --dev_set_file and --corpus_file,
Recall@K on the dev pairs is measured every --eval_steps and after each epoch, and the best model
is kept in save_dir/model_best/. Also runs under `python -m paddle.distributed.launch`.
"""
import argparse

from ns_common.evaluate import RecallEvaluator
from ns_common.semantic import POOLING_MODES, load_encoder
from ns_common.train_utils import add_train_args, build_dataloader, check_train_args, train
from ns_common.utils import fail, is_main_process, logger, start_training
from simcse.data import SimCSECollator, read_simcse_texts
from simcse.model import SimCSE


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_set_file", required=True, help="one text a line (recall/train_unsupervised.csv)")
    add_train_args(parser, save_dir="./checkpoints/simcse", batch_size=64, learning_rate=3e-4, epochs=1, warmup_proportion=0.1)
    parser.add_argument("--output_emb_size", type=int, default=None,
                        help="Linear(hidden -> k) after pooling; 0: none, the embedding is the hidden state (default: --init_from_ckpt's, else 0; PaddleNLP uses 256 with a base model)")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout of the backbone and of the pooled output: the SimCSE augmentation")
    parser.add_argument("--pooling", choices=POOLING_MODES, default=None,
                        help="cls: the pooled [CLS] output (PaddleNLP); mean: mean of the token states (default: --init_from_ckpt's, else mean)")
    parser.add_argument("--dup_rate", type=float, default=0.0, help="word repetition (ESimCSE): repeat up to this share of each view's tokens (0: off)")
    parser.add_argument("--second_view", choices=("dropout", "keywords"), default="dropout",
                        help="dropout: each text twice (SimCSE); keywords: the text and 2-5 of its words joined by spaces (a pseudo keyword query)")
    parser.add_argument("--margin", type=float, default=0.0, help="subtracted from the positive's cosine")
    parser.add_argument("--scale", type=float, default=20.0, help="multiplies the cosines (inverse temperature)")
    parser.add_argument("--dev_set_file", default=None, help="optional query<TAB>doc pairs for Recall@K during training")
    parser.add_argument("--corpus_file", default=None, help="documents to search for --dev_set_file")
    parser.add_argument("--recall_num", type=int, default=50)
    parser.add_argument("--recall_result_dir", default=None, help="write the latest evaluation's recall_result.txt here")
    args = parser.parse_args(argv)
    check_train_args(args, files=[("train_set_file", args.train_set_file), ("dev_set_file", args.dev_set_file), ("corpus_file", args.corpus_file)])
    if bool(args.dev_set_file) != bool(args.corpus_file):
        fail("--dev_set_file and --corpus_file go together (evaluation searches the dev queries in the corpus)")
    if not 0 <= args.dropout < 1:
        fail(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 <= args.dup_rate <= 1:
        fail(f"--dup_rate must be in [0, 1], got {args.dup_rate}")
    return args


def main(argv=None):
    args = parse_args(argv)
    start_training(args)

    texts = read_simcse_texts(args.train_set_file)
    if len(texts) < 2:
        fail(f"{args.train_set_file}: SimCSE needs at least 2 texts, found {len(texts)}")
    model, tokenizer = load_encoder(args.model_name_or_path, args.init_from_ckpt, args.output_emb_size, args.dropout,
                                    model_class=SimCSE, pooling=args.pooling, margin=args.margin, scale=args.scale)
    loader = build_dataloader(texts, args.batch_size, SimCSECollator(tokenizer, args.max_seq_length, args.dup_rate, args.seed, args.second_view))
    if is_main_process():
        logger.info(f"SimCSE: {len(texts)} texts, {len(loader)} batches of {args.batch_size} an epoch, embedding dim {model.embedding_dim}")

    evaluator = None
    if args.dev_set_file:
        evaluator = RecallEvaluator(tokenizer, args.dev_set_file, args.corpus_file, args.recall_num, args.max_seq_length,
                                    recall_result_dir=args.recall_result_dir)
    return train(model, tokenizer, loader, args, evaluate=evaluator)


if __name__ == "__main__":
    main()
