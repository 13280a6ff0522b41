"""The semantic encoder shared by SimCSE, in-batch negatives, recall, Milvus and the web service:
ERNIE [CLS] pooled output (or the mean of the token states) -> optional Linear(hidden -> output_emb_size)
-> L2 normalisation.

A checkpoint directory holds encoder_config.json next to model_state.pdparams (pooling, output_emb_size),
so every tool that loads it with `load_encoder` rebuilds the same encoder.
"""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ns_common.checkpoint import checkpoint_file, load_checkpoint, read_encoder_config
from ns_common.errors import ModelMismatchError
from ns_common.modeling import hidden_size_of, load_backbone, load_tokenizer, remaining_layers
from ns_common.text import batch_encode, batches, with_role

POOLING_MODES = ("cls", "mean")


def mean_pool(sequence_output, input_ids, pad_token_id):
    """The mean of the token states over the non-padding tokens: [batch, seq_len, hidden] -> [batch, hidden]."""
    mask = (input_ids != pad_token_id).astype(sequence_output.dtype).unsqueeze(-1)
    return paddle.sum(sequence_output * mask, axis=1) / paddle.clip(paddle.sum(mask, axis=1), min=1.0)


# mean pooling by default: the from-scratch and briefly pretrained backbones this project trains offline
# have a [CLS] output that barely depends on the input (see the README, "Recall models", for the measurements)
DEFAULT_POOLING = "mean"


class SemanticIndexBase(nn.Layer):
    """pooling: "cls" (PaddleNLP: the backbone's pooled [CLS] output, tanh(W h_cls + b)) or "mean" (the
    mean of the last hidden states over the non-padding tokens: content-dominated even in a randomly
    initialised or weakly pretrained backbone, whose [CLS] output barely depends on the input)."""

    def __init__(self, backbone, dropout=None, output_emb_size=0, pooling=DEFAULT_POOLING):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        self.ptm = backbone
        self.pooling = pooling
        self.pad_token_id = getattr(backbone.config, "pad_token_id", 0) or 0
        self.dropout = nn.Dropout(dropout if dropout is not None else 0.1)
        self.output_emb_size = output_emb_size or 0
        if self.output_emb_size > 0:
            weight_attr = paddle.ParamAttr(initializer=nn.initializer.TruncatedNormal(std=0.02))
            self.emb_reduce_linear = nn.Linear(hidden_size_of(backbone), self.output_emb_size, weight_attr=weight_attr)

    @property
    def embedding_dim(self):
        return self.output_emb_size or hidden_size_of(self.ptm)

    def encoder_config(self):
        """What a checkpoint must record so that load_encoder rebuilds this encoder (encoder_config.json)."""
        return {"pooling": self.pooling, "output_emb_size": self.output_emb_size, "embedding_dim": self.embedding_dim}

    def get_pooled_embedding(
        self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None, with_dropout=True
    ):
        sequence_output, cls_embedding = self.ptm(input_ids, token_type_ids, position_ids, attention_mask)
        if self.pooling == "mean":
            cls_embedding = mean_pool(sequence_output, input_ids, self.pad_token_id)
        if self.output_emb_size > 0:
            cls_embedding = self.emb_reduce_linear(cls_embedding)
        if with_dropout:
            cls_embedding = self.dropout(cls_embedding)
        return F.normalize(cls_embedding, p=2, axis=-1)

    def forward(self, input_ids, token_type_ids=None):
        """The exported/inference graph: normalised embeddings, no dropout."""
        return self.get_pooled_embedding(input_ids, token_type_ids, with_dropout=False)

    def cosine_sim(self, query_input_ids, title_input_ids, query_token_type_ids=None, title_token_type_ids=None):
        q = self.get_pooled_embedding(query_input_ids, query_token_type_ids, with_dropout=False)
        t = self.get_pooled_embedding(title_input_ids, title_token_type_ids, with_dropout=False)
        return paddle.sum(q * t, axis=-1)


def load_encoder(
    model_name_or_path,
    params_path=None,
    output_emb_size=None,
    dropout=None,
    model_class=None,
    pooling=None,
    **model_kwargs,
):
    """Backbone from --model_name_or_path, then (optionally) a full checkpoint from --params_path.
    Returns (model, tokenizer). A checkpoint whose shapes don't fit the model is a clear error.
    model_class: a SemanticIndexBase subclass (a stage's training model with its loss), built with
    model_kwargs (e.g. margin, scale); its parameters are the encoder's, so checkpoints are interchangeable.
    output_emb_size: None takes the checkpoint's (the shape of its projection; 0 without a checkpoint).
    pooling: None takes the checkpoint's (encoder_config.json); a checkpoint without one is PaddleNLP's,
    hence "cls"; no checkpoint at all: DEFAULT_POOLING. A value conflicting with the checkpoint's is an error."""
    state, saved = None, {}
    if params_path:
        params_path = checkpoint_file(params_path)
        state = paddle.load(params_path)
        saved = read_encoder_config(params_path)
        projection = state.get("emb_reduce_linear.weight")
        trained_size = int(projection.shape[1]) if projection is not None else 0
        if output_emb_size is None:
            output_emb_size = trained_size
        elif (output_emb_size or 0) != trained_size:
            raise ModelMismatchError(
                f"{params_path} was trained with --output_emb_size {trained_size}, not {output_emb_size} "
                f"(leave the flag out to use the checkpoint's)"
            )
        if pooling and saved.get("pooling") and saved["pooling"] != pooling:
            raise ModelMismatchError(
                f"{params_path} was trained with {saved['pooling']} pooling, not {pooling} (leave "
                f"--pooling out to use the checkpoint's)"
            )
    if not pooling:
        pooling = saved.get("pooling", "cls") if params_path else DEFAULT_POOLING
    overrides = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    backbone = load_backbone(model_name_or_path, **overrides)
    tokenizer = load_tokenizer(model_name_or_path)
    model = (model_class or SemanticIndexBase)(
        backbone, dropout=dropout, output_emb_size=output_emb_size or 0, pooling=pooling, **model_kwargs
    )
    if params_path:
        load_checkpoint(model, params_path, state)
    return model, tokenizer


def leave_out_layers(model, drop_layers, flag="--query_drop_layers") -> list:
    """Takes the encoder layers drop_layers (0-based) out of model's backbone, in place, joining the layers around
    them (what pretrained/convert.py --drop_layers does to a converted model: each post-LN layer hands the next a
    normalised state). Returns the layers kept, as numbered before; ConfigError (naming flag) for a layer the
    encoder does not have, or when none would be left."""
    layers = list(model.ptm.encoder.layers)
    kept = remaining_layers(len(layers), drop_layers, flag)
    model.ptm.encoder.layers = nn.LayerList([layers[i] for i in kept])
    return kept


@paddle.no_grad()
def embed_texts(model, tokenizer, texts, max_seq_length=64, batch_size=64, progress=False, role=None):
    """Normalised embeddings (float32 numpy, N x dim) of texts, with the dynamic graph, in input order. role: "query"
    or "doc" for a model trained with prefixes (ns_common.text.with_role)."""
    model.eval()
    texts = with_role(texts, tokenizer, role)
    # batches of similar length waste less compute on padding; the result is put back in input order
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = []
    chunks = batches(order, batch_size)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, total=(len(texts) + batch_size - 1) // batch_size, desc="embedding", unit="batch")
    for chunk in chunks:
        input_ids, token_type_ids = batch_encode([texts[i] for i in chunk], tokenizer, max_seq_length)
        # not model(...): a stage's training model overrides forward with its loss
        emb = model.get_pooled_embedding(
            paddle.to_tensor(input_ids), paddle.to_tensor(token_type_ids), with_dropout=False
        )
        out.append(emb.numpy().astype(np.float32))
    if not out:
        return np.zeros((0, model.embedding_dim), dtype=np.float32)
    embeddings = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
    embeddings[np.asarray(order)] = np.concatenate(out, axis=0)
    return embeddings
