"""Pretraining heads over an ERNIE or ERNIE-Gram backbone: a masked-LM head tied to the word
embeddings and a sentence-order classifier on the pooled [CLS] output (ErnieForPretraining's
objective; ERNIE-Gram has no such heads in PaddleNLP, so the same ones are used for both).

Only the backbone is a product: `save_pretrained` it and downstream stages load it directly."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class PretrainingModel(nn.Layer):
    def __init__(self, backbone, freeze_word_embeddings=False):
        """freeze_word_embeddings: the input word embeddings keep their initial values and the MLM output
        layer gets a trainable copy of them instead of sharing them."""
        super().__init__()
        self.backbone = backbone
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
                word_embeddings.shape, default_initializer=nn.initializer.Assign(word_embeddings.numpy()))

    def forward(self, input_ids, token_type_ids, masked_positions):
        """masked_positions index the flattened [batch * seq_len] tokens. Returns (mlm_logits
        [n_masked, vocab], sop_logits [batch, 2])."""
        sequence_output, pooled_output = self.backbone(input_ids, token_type_ids)[:2]
        hidden = paddle.gather(sequence_output.reshape([-1, sequence_output.shape[-1]]), masked_positions)
        hidden = self.mlm_layer_norm(F.gelu(self.mlm_transform(hidden)))
        word_embeddings = self.backbone.embeddings.word_embeddings.weight if self.mlm_output_weight is None else self.mlm_output_weight
        mlm_logits = paddle.matmul(hidden, word_embeddings, transpose_y=True) + self.mlm_bias
        return mlm_logits, self.sop_classifier(pooled_output)

    def heads_state_dict(self):
        """The heads' own parameters (the backbone is saved with save_pretrained)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}


def pretraining_loss(mlm_logits, masked_labels, sop_logits, sop_labels):
    """Returns (total, mlm loss, sop loss): mean cross-entropy over masked tokens and over samples."""
    mlm_loss = F.cross_entropy(mlm_logits.astype("float32"), masked_labels)
    sop_loss = F.cross_entropy(sop_logits.astype("float32"), sop_labels)
    return mlm_loss + sop_loss, mlm_loss, sop_loss


@paddle.no_grad()
def evaluate(model, batches):
    """Token-weighted MLM loss and accuracy, and SOP loss and accuracy, over `batches` (numpy dicts)."""
    model.eval()
    mlm_loss = mlm_correct = n_masked = sop_loss = sop_correct = n_samples = 0.0
    for batch in batches:
        inputs = [paddle.to_tensor(batch[k]) for k in ("input_ids", "token_type_ids", "masked_positions")]
        mlm_logits, sop_logits = model(*inputs)
        labels, sop_labels = paddle.to_tensor(batch["masked_labels"]), paddle.to_tensor(batch["sop_labels"])
        mlm_loss += F.cross_entropy(mlm_logits, labels, reduction="sum").item()
        mlm_correct += (mlm_logits.argmax(-1) == labels).astype("float32").sum().item()
        n_masked += len(batch["masked_labels"])
        sop_loss += F.cross_entropy(sop_logits, sop_labels, reduction="sum").item()
        sop_correct += (sop_logits.argmax(-1) == sop_labels).astype("float32").sum().item()
        n_samples += len(batch["sop_labels"])
    model.train()
    if not n_samples:
        return {}
    return {
        "mlm_loss": mlm_loss / n_masked,
        "mlm_acc": mlm_correct / n_masked,
        "sop_loss": sop_loss / n_samples,
        "sop_acc": sop_correct / n_samples,
        "samples": int(n_samples),
        "masked_tokens": int(n_masked),
    }
