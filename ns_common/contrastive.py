"""The in-batch contrastive loss shared by SimCSE and the in-batch-negatives model.

Row i of the batch is a query (or a text's first dropout view), column i its positive; every other
column is a negative: the other rows' positives and, optionally, mined hard negatives appended after
them. loss = cross entropy over scale * (S - margin * I), S the cosine matrix [B, B + M].

A "negative" that is in fact a positive would teach the model the wrong thing: a column holding the
same text as row i's positive (duplicate documents in a batch), or the positive of a row with the same
query. `false_negative_mask` finds them from the texts; the loss gives them no probability mass.
"""
import numpy as np
import paddle
import paddle.nn.functional as F


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
