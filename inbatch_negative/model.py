"""The in-batch-negatives training model: the shared encoder whose forward is the supervised loss."""

import paddle

from ns_common.contrastive import in_batch_softmax_loss
from ns_common.semantic import DEFAULT_POOLING, SemanticIndexBase


class SemanticIndexBatchNeg(SemanticIndexBase):
    def __init__(self, backbone, dropout=None, output_emb_size=0, pooling=DEFAULT_POOLING, margin=0.2, scale=30.0):
        super().__init__(backbone, dropout=dropout, output_emb_size=output_emb_size, pooling=pooling)
        self.margin = margin
        self.scale = scale

    def forward(
        self,
        query_input_ids,
        title_input_ids,
        query_token_type_ids=None,
        title_token_type_ids=None,
        neg_input_ids=None,
        neg_token_type_ids=None,
        false_negative_mask=None,
    ):
        """Loss = cross entropy over scale * (Q D^T - margin * I); D = the batch's docs, then its mined hard
        negatives (shared by every query of the batch); masked columns are duplicates of a positive."""
        queries = self.get_pooled_embedding(query_input_ids, query_token_type_ids)
        docs = self.get_pooled_embedding(title_input_ids, title_token_type_ids)
        if neg_input_ids is not None:
            docs = paddle.concat([docs, self.get_pooled_embedding(neg_input_ids, neg_token_type_ids)], axis=0)
        return in_batch_softmax_loss(queries, docs, self.margin, self.scale, false_negative_mask)
