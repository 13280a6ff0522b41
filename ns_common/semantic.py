"""The semantic encoder shared by SimCSE, in-batch negatives, recall, Milvus and the web service:
ERNIE [CLS] pooled output -> optional Linear(hidden -> output_emb_size) -> L2 normalisation."""
import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ns_common.modeling import hidden_size_of, load_backbone, load_tokenizer
from ns_common.text import batch_encode, batches
from ns_common.utils import fail, logger


class SemanticIndexBase(nn.Layer):
    def __init__(self, backbone, dropout=None, output_emb_size=0):
        super().__init__()
        self.ptm = backbone
        self.dropout = nn.Dropout(dropout if dropout is not None else 0.1)
        self.output_emb_size = output_emb_size or 0
        if self.output_emb_size > 0:
            weight_attr = paddle.ParamAttr(initializer=nn.initializer.TruncatedNormal(std=0.02))
            self.emb_reduce_linear = nn.Linear(hidden_size_of(backbone), self.output_emb_size, weight_attr=weight_attr)

    @property
    def embedding_dim(self):
        return self.output_emb_size or hidden_size_of(self.ptm)

    def get_pooled_embedding(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None, with_dropout=True):
        _, cls_embedding = self.ptm(input_ids, token_type_ids, position_ids, attention_mask)
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


def load_encoder(model_name_or_path, params_path=None, output_emb_size=0, dropout=None):
    """Backbone from --model_name_or_path, then (optionally) a full checkpoint from --params_path.
    Returns (model, tokenizer). A checkpoint whose shapes don't fit the model is a clear error."""
    overrides = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    backbone = load_backbone(model_name_or_path, **overrides)
    tokenizer = load_tokenizer(model_name_or_path)
    model = SemanticIndexBase(backbone, dropout=dropout, output_emb_size=output_emb_size)
    if params_path:
        load_checkpoint(model, params_path)
    return model, tokenizer


def load_checkpoint(model, params_path):
    """Loads model_state.pdparams (or a directory holding it) into model; fails fast on any mismatch."""
    if os.path.isdir(params_path):
        params_path = os.path.join(params_path, "model_state.pdparams")
    if not os.path.isfile(params_path):
        fail(f"checkpoint not found: {params_path}")
    state = paddle.load(params_path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in own if k in state and list(state[k].shape) != list(own[k].shape)]
    if missing or mismatched:
        detail = f"missing {missing[:3]}" if missing else f"shape mismatch {mismatched[:2]}"
        fail(f"{params_path} does not fit the model ({detail}); check --model_name_or_path and --output_emb_size")
    if unexpected:
        logger.warning(f"{params_path}: ignoring {len(unexpected)} unexpected keys, e.g. {unexpected[:3]}")
    model.set_state_dict(state)
    logger.info(f"loaded parameters from {params_path}")


@paddle.no_grad()
def embed_texts(model, tokenizer, texts, max_seq_length=64, batch_size=64, progress=False):
    """Normalised embeddings (float32 numpy, N x dim) of texts, with the dynamic graph."""
    model.eval()
    out = []
    chunks = batches(list(texts), batch_size)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, total=(len(texts) + batch_size - 1) // batch_size, desc="embedding", unit="batch")
    for chunk in chunks:
        input_ids, token_type_ids = batch_encode(chunk, tokenizer, max_seq_length)
        emb = model(paddle.to_tensor(input_ids), paddle.to_tensor(token_type_ids))
        out.append(emb.numpy().astype(np.float32))
    if not out:
        return np.zeros((0, model.embedding_dim), dtype=np.float32)
    return np.concatenate(out, axis=0)
