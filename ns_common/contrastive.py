"""The in-batch contrastive loss shared by SimCSE and the in-batch-negatives model.

Row i of the batch is a query (or a text's first dropout view), column i its positive; every other
column is a negative: the other rows' positives and, optionally, mined hard negatives appended after
them. loss = cross entropy over scale * (S - margin * I), S the cosine matrix [B, B + M].

A "negative" that is in fact a positive would teach the model the wrong thing: a column holding the
same text as row i's positive (duplicate documents in a batch), or the positive of a row with the same
query. `false_negative_mask` finds them from the texts; the loss gives them no probability mass.

The two stages also share their model flags (`add_contrastive_args`) and the training itself
(`train_contrastive`): they differ in their data, their loss (the model class) and their batches.
"""

import numpy as np
import paddle
import paddle.nn.functional as F

from ns_common.errors import BadInputError
from ns_common.evaluate import RecallEvaluator
from ns_common.semantic import POOLING_MODES, load_encoder
from ns_common.train_utils import build_dataloader, train
from ns_common.utils import is_main_process, logger, start_training


def false_negative_mask(queries, positives, negatives=()):
    """Bool array [B, B + M]: True where column j must not count as a negative of row i.

    Columns are positives[0..B) then negatives[0..M). Never True on the diagonal (the positive itself).
    """
    columns = list(positives) + list(negatives)
    n_rows = len(queries)
    mask = np.zeros((n_rows, len(columns)), dtype=bool)
    for i in range(n_rows):
        for j, text in enumerate(columns):
            if j == i:
                continue
            same_query = j < n_rows and queries[j] == queries[i]
            if text == positives[i] or same_query:
                mask[i, j] = True
    return mask


def in_batch_softmax_loss(query_embedding, doc_embedding, margin=0.0, scale=20.0, mask=None):
    """query_embedding [B, D], doc_embedding [B + M, D] (normalised; row i's positive is doc i)."""
    batch_size = query_embedding.shape[0]
    cosine = paddle.matmul(query_embedding, doc_embedding, transpose_y=True)
    # a margin on the positive makes the model separate it from the negatives by at least `margin`
    cosine = cosine - margin * paddle.eye(batch_size, cosine.shape[1], dtype=cosine.dtype)
    logits = scale * cosine
    if mask is not None:
        logits = paddle.where(mask, paddle.full_like(logits, -1e4), logits)
    labels = paddle.arange(batch_size, dtype="int64")
    return F.cross_entropy(logits, labels)


def add_contrastive_args(parser, dropout=None, dropout_help=None, margin=0.0, scale=20.0):
    """The model flags of SimCSE and in-batch negatives, and those of Recall@K during training but the dev
    pair file (each stage names its own)."""
    parser.add_argument(
        "--output_emb_size",
        type=int,
        default=None,
        help="Linear(hidden -> k) after pooling; 0: none, the embedding is the hidden state (default: --init_from_ckpt's, else 0; PaddleNLP uses 256 with a base model)",  # noqa: E501
    )
    parser.add_argument(
        "--dropout",
        type=float,
        default=dropout,
        help=dropout_help or "dropout of the backbone and the pooled output (default: the backbone's, 0.1)",
    )
    parser.add_argument(
        "--pooling",
        choices=POOLING_MODES,
        default=None,
        help="cls: the pooled [CLS] output (PaddleNLP); mean: mean of the token states (default: --init_from_ckpt's, else mean)",
    )
    parser.add_argument("--margin", type=float, default=margin, help="subtracted from the positive's cosine")
    parser.add_argument("--scale", type=float, default=scale, help="multiplies the cosines (inverse temperature)")
    parser.add_argument("--corpus_file", default=None, help="documents to search for the dev queries")
    parser.add_argument("--recall_num", type=int, default=50)
    parser.add_argument(
        "--recall_result_dir", default=None, help="write the latest evaluation's recall_result.txt here"
    )
    return parser


def train_contrastive(args, model_class, examples, make_collator, what, dev_pair_file=None, best_metric="recall@5"):
    """Trains the semantic encoder with in-batch negatives, after start_training (logs, device, process group,
    seed). model_class: a SemanticIndexBase whose forward is the loss, built from the add_train_args and
    add_contrastive_args flags; make_collator(tokenizer): the batches of the examples (`what`: their name in
    messages); dev_pair_file: Recall@K of these pairs against --corpus_file during training. Returns train's summary."""
    start_training(args)
    if len(examples) < 2:
        raise BadInputError(f"{args.train_set_file}: in-batch negatives need at least 2 {what}, found {len(examples)}")
    model, tokenizer = load_encoder(
        args.model_name_or_path,
        args.init_from_ckpt,
        args.output_emb_size,
        args.dropout,
        model_class=model_class,
        pooling=args.pooling,
        margin=args.margin,
        scale=args.scale,
    )
    loader = build_dataloader(examples, args.batch_size, make_collator(tokenizer))
    if is_main_process():
        logger.info(
            f"{model_class.__name__}: {len(examples)} {what}, {len(loader)} batches of {args.batch_size} an epoch, "
            f"embedding dim {model.embedding_dim}{', warm start ' + args.init_from_ckpt if args.init_from_ckpt else ''}"
        )
    evaluator = None
    if dev_pair_file:
        evaluator = RecallEvaluator(
            tokenizer,
            dev_pair_file,
            args.corpus_file,
            args.recall_num,
            args.max_seq_length,
            recall_result_dir=args.recall_result_dir,
        )
    return train(model, tokenizer, loader, args, evaluate=evaluator, best_metric=best_metric)
