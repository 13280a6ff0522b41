"""The SimCSE training model: the shared encoder whose forward is the unsupervised contrastive loss."""

from ns_common.contrastive import in_batch_softmax_loss
from ns_common.semantic import DEFAULT_POOLING, SemanticIndexBase


class SimCSE(SemanticIndexBase):
    def __init__(self, backbone, dropout=None, output_emb_size=0, pooling=DEFAULT_POOLING, margin=0.0, scale=20.0):
        super().__init__(backbone, dropout=dropout, output_emb_size=output_emb_size, pooling=pooling)
        self.margin = margin
        self.scale = scale

    def forward(self, input_ids, second_input_ids=None, false_negative_mask=None):
        """Loss = cross entropy over scale * (S - margin * I), S the cosine matrix of two dropout views of
        the batch (second_input_ids: the second view's tokens when they differ, e.g. word repetition)."""
        view_a = self.get_pooled_embedding(input_ids)
        view_b = self.get_pooled_embedding(second_input_ids if second_input_ids is not None else input_ids)
        return in_batch_softmax_loss(view_a, view_b, self.margin, self.scale, false_negative_mask)
