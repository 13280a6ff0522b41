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
from ns_common.evaluate import RecallEvaluator
from ns_common.semantic import POOLING_MODES, load_encoder
from ns_common.train_utils import add_train_args, build_dataloader, check_train_args, train
from ns_common.utils import fail, is_main_process, logger, start_training


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_set_file", required=True, help="query<TAB>doc pairs (recall/train.csv)")
    add_train_args(parser, save_dir="./checkpoints/inbatch", batch_size=64, learning_rate=3e-4, epochs=10, warmup_proportion=0.1)
    parser.add_argument("--output_emb_size", type=int, default=None,
                        help="Linear(hidden -> k) after pooling; 0: none, the embedding is the hidden state (default: --init_from_ckpt's, else 0; PaddleNLP uses 256 with a base model)")
    parser.add_argument("--dropout", type=float, default=None, help="dropout of the backbone and the pooled output (default: the backbone's, 0.1)")
    parser.add_argument("--pooling", choices=POOLING_MODES, default=None,
                        help="cls: the pooled [CLS] output (PaddleNLP); mean: mean of the token states (default: --init_from_ckpt's, else mean)")
    parser.add_argument("--margin", type=float, default=0.2, help="subtracted from the positive's cosine")
    parser.add_argument("--scale", type=float, default=30.0, help="multiplies the cosines (inverse temperature)")
    parser.add_argument("--hard_negative_file", default=None, help="query<TAB>pos<TAB>neg triples from mine_hard_negatives.py")
    parser.add_argument("--negatives_per_query", type=int, default=1, help="hard negatives a training pair adds to its batch")
    parser.add_argument("--evaluate", action="store_true", help="Recall@K on --similar_text_pair_file after every epoch; keep the best model")
    parser.add_argument("--similar_text_pair_file", "--similar_text_pair", dest="similar_text_pair_file", default=None, help="dev query<TAB>doc pairs")
    parser.add_argument("--corpus_file", default=None, help="documents to search for the dev queries")
    parser.add_argument("--recall_num", type=int, default=50)
    parser.add_argument("--recall_result_dir", default=None, help="write the latest evaluation's recall_result.txt here")
    args = parser.parse_args(argv)
    check_train_args(args, files=[("train_set_file", args.train_set_file), ("hard_negative_file", args.hard_negative_file),
                                  ("similar_text_pair_file", args.similar_text_pair_file), ("corpus_file", args.corpus_file)])
    if args.evaluate and not (args.similar_text_pair_file and args.corpus_file):
        fail("--evaluate needs --similar_text_pair_file and --corpus_file")
    if args.negatives_per_query < 0:
        fail(f"--negatives_per_query must be >= 0, got {args.negatives_per_query}")
    return args


def main(argv=None):
    args = parse_args(argv)
    start_training(args)

    examples = read_train_pairs(args.train_set_file)
    if len(examples) < 2:
        fail(f"{args.train_set_file}: in-batch negatives need at least 2 pairs, found {len(examples)}")
    if args.hard_negative_file:
        attach_negatives(examples, read_hard_negatives(args.hard_negative_file))
    model, tokenizer = load_encoder(args.model_name_or_path, args.init_from_ckpt, args.output_emb_size, args.dropout,
                                    model_class=SemanticIndexBatchNeg, pooling=args.pooling, margin=args.margin, scale=args.scale)
    collate = InBatchCollator(tokenizer, args.max_seq_length, args.negatives_per_query, args.seed)
    loader = build_dataloader(examples, args.batch_size, collate)
    if is_main_process():
        logger.info(f"in-batch negatives: {len(examples)} pairs, {len(loader)} batches of {args.batch_size} an epoch, "
                    f"embedding dim {model.embedding_dim}{', warm start ' + args.init_from_ckpt if args.init_from_ckpt else ''}")

    evaluator = None
    if args.evaluate:
        evaluator = RecallEvaluator(tokenizer, args.similar_text_pair_file, args.corpus_file, args.recall_num, args.max_seq_length,
                                    recall_result_dir=args.recall_result_dir)
    return train(model, tokenizer, loader, args, evaluate=evaluator, best_metric="recall@5")


if __name__ == "__main__":
    main()
