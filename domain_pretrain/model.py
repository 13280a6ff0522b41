"""Pretraining heads over an ERNIE or ERNIE-Gram backbone: a masked-LM head tied to the word
embeddings and a sentence-order classifier on the pooled [CLS] output (ErnieForPretraining's
objective; ERNIE-Gram has no such heads in PaddleNLP, so the same ones are used for both).

Optionally (`span_contrast=True`, beyond PaddleNLP) a coCondenser-style span contrast: the two text spans
of each sample (A and B, consecutive text of one document) are encoded on their own, mean-pooled like
the recall stages pool, and each must find its partner among the batch's other spans (in-batch softmax).
MLM alone never trains the pooled sentence vector; this objective does, on the same domain text.

Only the backbone is a product: `save_pretrained` it and downstream stages load it directly."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ns_common.semantic import mean_pool

SPAN_CONTRAST_SCALE = 20.0  # inverse temperature of the span contrast, SimCSE's default


class PretrainingModel(nn.Layer):
    def __init__(self, backbone, freeze_word_embeddings=False, span_contrast=False):
        """freeze_word_embeddings: the input word embeddings keep their initial values and the MLM output
        layer gets a trainable copy of them instead of sharing them. span_contrast: forward also takes the
        samples' spans and returns their in-batch similarity logits."""
        super().__init__()
        self.backbone = backbone
        self.span_contrast = span_contrast
        config = backbone.config
        word_embeddings = backbone.embeddings.word_embeddings.weight  # [vocab, embedding size]
        vocab_size, embedding_size = word_embeddings.shape
        init = paddle.ParamAttr(initializer=nn.initializer.TruncatedNormal(std=config.initializer_range))
        self.mlm_transform = nn.Linear(config.hidden_size, embedding_size, weight_attr=init)
        self.mlm_layer_norm = nn.LayerNorm(embedding_size)
        self.mlm_bias = self.create_parameter([vocab_size], is_bias=True)
        self.sop_classifier = nn.Linear(config.hidden_size, 2, weight_attr=init)
        self.mlm_output_weight = None
        if freeze_word_embeddings:
            word_embeddings.stop_gradient = True
            self.mlm_output_weight = self.create_parameter(
                word_embeddings.shape, default_initializer=nn.initializer.Assign(word_embeddings.numpy())
            )

    def forward(self, input_ids, token_type_ids, masked_positions, span_a_ids=None, span_b_ids=None):
        """masked_positions index the flattened [batch * seq_len] tokens; span_a_ids/span_b_ids ([CLS] A [SEP],
        [CLS] B [SEP], unmasked) only with span_contrast. Returns (mlm_logits [n_masked, vocab], sop_logits
        [batch, 2], span_logits [batch, batch] or None: scaled cosines of each A with every B)."""
        sequence_output, pooled_output = self.backbone(input_ids, token_type_ids)[:2]
        hidden = paddle.gather(sequence_output.reshape([-1, sequence_output.shape[-1]]), masked_positions)
        hidden = self.mlm_layer_norm(F.gelu(self.mlm_transform(hidden)))
        word_embeddings = (
            self.backbone.embeddings.word_embeddings.weight
            if self.mlm_output_weight is None
            else self.mlm_output_weight
        )
        mlm_logits = paddle.matmul(hidden, word_embeddings, transpose_y=True) + self.mlm_bias
        span_logits = None
        if self.span_contrast and span_a_ids is not None:
            a, b = (
                F.normalize(mean_pool(self.backbone(ids)[0], ids, self.backbone.config.pad_token_id), axis=-1)
                for ids in (span_a_ids, span_b_ids)
            )
            span_logits = SPAN_CONTRAST_SCALE * paddle.matmul(a, b, transpose_y=True)
        return mlm_logits, self.sop_classifier(pooled_output), span_logits

    def heads_state_dict(self):
        """The heads' own parameters (the backbone is saved with save_pretrained)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}


def span_contrast_loss(span_logits):
    """In-batch softmax both ways (A -> its B among all Bs, B -> its A): sample i's partner is i."""
    span_logits = span_logits.astype("float32")
    labels = paddle.arange(span_logits.shape[0], dtype="int64")
    return (F.cross_entropy(span_logits, labels) + F.cross_entropy(span_logits.T, labels)) / 2


def pretraining_loss(mlm_logits, masked_labels, sop_logits, sop_labels, span_logits=None):
    """Returns (total, mlm loss, sop loss, span loss or None): mean cross-entropy over masked tokens and
    over samples; the span contrast (when given) is added unweighted."""
    mlm_loss = F.cross_entropy(mlm_logits.astype("float32"), masked_labels)
    sop_loss = F.cross_entropy(sop_logits.astype("float32"), sop_labels)
    if span_logits is None:
        return mlm_loss + sop_loss, mlm_loss, sop_loss, None
    span_loss = span_contrast_loss(span_logits)
    return mlm_loss + sop_loss + span_loss, mlm_loss, sop_loss, span_loss


@paddle.no_grad()
def evaluate(model, batches):
    """Token-weighted MLM loss and accuracy, and SOP loss and accuracy, over `batches` (numpy dicts);
    with span contrast, also its loss and accuracy (share of spans whose nearest in-batch span is their partner)."""
    model.eval()
    mlm_loss = mlm_correct = n_masked = sop_loss = sop_correct = n_samples = span_loss = span_correct = 0.0
    for batch in batches:
        names = ("input_ids", "token_type_ids", "masked_positions") + (
            ("span_a_ids", "span_b_ids") if "span_a_ids" in batch else ()
        )
        mlm_logits, sop_logits, span_logits = model(*[paddle.to_tensor(batch[k]) for k in names])
        labels, sop_labels = paddle.to_tensor(batch["masked_labels"]), paddle.to_tensor(batch["sop_labels"])
        mlm_loss += F.cross_entropy(mlm_logits, labels, reduction="sum").item()
        mlm_correct += (mlm_logits.argmax(-1) == labels).astype("float32").sum().item()
        n_masked += len(batch["masked_labels"])
        sop_loss += F.cross_entropy(sop_logits, sop_labels, reduction="sum").item()
        sop_correct += (sop_logits.argmax(-1) == sop_labels).astype("float32").sum().item()
        n_samples += len(batch["sop_labels"])
        if span_logits is not None:
            span_loss += span_contrast_loss(span_logits).item() * len(batch["sop_labels"])
            span_correct += (
                (span_logits.argmax(-1) == paddle.arange(span_logits.shape[0])).astype("float32").sum().item()
            )
    model.train()
    if not n_samples:
        return {}
    metrics = {
        "mlm_loss": mlm_loss / n_masked,
        "mlm_acc": mlm_correct / n_masked,
        "sop_loss": sop_loss / n_samples,
        "sop_acc": sop_correct / n_samples,
        "samples": int(n_samples),
        "masked_tokens": int(n_masked),
    }
    if model.span_contrast:
        metrics.update(span_loss=span_loss / n_samples, span_acc=span_correct / n_samples)
    return metrics
