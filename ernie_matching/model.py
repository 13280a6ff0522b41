"""The reranker: a single-tower cross-encoder over `[CLS] query [SEP] title [SEP]`.

ERNIE-Gram pooled [CLS] -> dropout -> Linear(hidden, 1) -> sigmoid = probability that the title is
relevant to the query. Trained pairwise: the positive pair must score above the negative one.

Beyond PaddleNLP, exact-match token types (mark_matches): besides 0 (query) and 1 (title), a title token
that also occurs in the query gets type 2 and a query token that also occurs in the title type 3. A
pretrained cross-encoder learns such matching from its attention; a from-scratch one (this project
offline) does not within a CPU budget: on CSL dev its AUC stays at chance (0.50-0.55 after 300 steps)
without the marks and reaches 0.95 after 50 steps with them. The two extra rows of the token-type
embedding start as copies of rows 1 and 0, so a pretrained model starts out scoring as before.
The setting is saved in the checkpoint's encoder_config.json, and the pair encoder follows it.
"""

import json
import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ernie_matching.data import QUERY_TYPE, TITLE_TYPE
from ns_common.checkpoint import load_checkpoint, read_encoder_config
from ns_common.errors import ConfigError, ModelMismatchError
from ns_common.modeling import backbone_from_config, hidden_size_of, load_backbone, load_tokenizer

LOSSES = ("margin", "logistic")
LOGISTIC_GAP_CAP = 10.0


def add_match_token_types(backbone):
    """Grows the token-type embedding from 2 rows to 4: rows 2 and 3 (matched title / query tokens) start as
    copies of rows 1 and 0."""
    old = backbone.embeddings.token_type_embeddings
    weight = old.weight.numpy()
    if weight.shape[0] != 2:
        raise ModelMismatchError(
            f"exact-match token types need a backbone with 2 token types, this one has {weight.shape[0]}"
        )
    grown = nn.Embedding(4, weight.shape[1])
    grown.weight.set_value(
        paddle.to_tensor(
            np.concatenate([weight, weight[TITLE_TYPE : TITLE_TYPE + 1], weight[QUERY_TYPE : QUERY_TYPE + 1]])
        )
    )
    backbone.embeddings.token_type_embeddings = grown


class PairwiseMatching(nn.Layer):
    def __init__(self, backbone, dropout=None, margin=0.1, loss="margin", mark_matches=False):
        super().__init__()
        self.ptm = backbone
        self.mark_matches = mark_matches
        if mark_matches:
            add_match_token_types(backbone)
        self.dropout = nn.Dropout(dropout if dropout is not None else 0.1)
        self.margin = margin
        self.loss = loss
        self.similarity = nn.Linear(hidden_size_of(backbone), 1)

    def forward(self, input_ids, token_type_ids=None, return_logits=False):
        """Relevance probabilities (sigmoid of the logits), shape [batch]: the prediction and export graph.
        Training calls it with return_logits=True (through DataParallel, which wraps forward only)."""
        _, cls_embedding = self.ptm(input_ids, token_type_ids)
        logits = self.similarity(self.dropout(cls_embedding)).squeeze(-1)
        return logits if return_logits else F.sigmoid(logits)

    # PaddleNLP's name for the same thing
    predict = forward

    def encoder_config(self):
        """What a checkpoint records (encoder_config.json) so that the model and its pair encoder are rebuilt alike."""
        return {"mark_matches": self.mark_matches}

    def pairwise_loss(self, pos_logits, neg_logits):
        """margin (PaddleNLP): margin_ranking_loss(sigmoid(pos), sigmoid(neg), 1, margin), i.e.
        mean(max(0, margin - (p_pos - p_neg))). Its gradient vanishes when the sigmoid saturates, which a
        from-scratch backbone easily does (every pair scored ~0.9, loss stuck at the margin).
        logistic (RankNet): mean(log(1 + exp(-(s_pos - s_neg)))) on the logits, never saturating."""
        if self.loss == "logistic":
            # pairs already LOGISTIC_GAP_CAP logits apart get no gradient at all rather than a vanishing one:
            # squared, ~1e-20 gradients become denormal floats in Adam's moments, and on a CPU every
            # operation on denormals is slow (a CSL run went from 1.1 to 6.5 s a step as the model learned)
            gap = paddle.clip(pos_logits - neg_logits, max=LOGISTIC_GAP_CAP)
            return F.softplus(-gap).mean()
        pos_probs, neg_probs = F.sigmoid(pos_logits), F.sigmoid(neg_logits)
        return F.margin_ranking_loss(pos_probs, neg_probs, paddle.ones_like(pos_probs), margin=self.margin)


def load_matching_model(
    model_name_or_path=None, params_path=None, margin=0.1, dropout=None, loss="margin", mark_matches=False
):
    """(model, tokenizer): the backbone of --model_name_or_path, then the full reranker checkpoint of
    --params_path (model_state.pdparams or its directory) when given.
    mark_matches: exact-match token types for a new model; a checkpoint brings its own setting.

    With only params_path, the backbone is found from the checkpoint (see backbone_of_checkpoint).
    A checkpoint of another size or architecture fails fast with a one-line error.
    """
    if model_name_or_path is None:
        if not params_path:
            raise ConfigError("give --model_name_or_path (a backbone) and/or --params_path (a reranker checkpoint)")
        model_name_or_path = backbone_of_checkpoint(params_path)
    overrides = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    # with a checkpoint to load, the backbone's own weights would be overwritten: build it from its config
    backbone = (backbone_from_config if params_path else load_backbone)(model_name_or_path, **overrides)
    tokenizer = load_tokenizer(model_name_or_path)
    if params_path:
        mark_matches = read_encoder_config(params_path).get("mark_matches", False)
    model = PairwiseMatching(backbone, dropout=dropout, margin=margin, loss=loss, mark_matches=mark_matches)
    if params_path:
        load_checkpoint(model, params_path)
    return model, tokenizer


def backbone_of_checkpoint(params_path):
    """Where a checkpoint's architecture and tokenizer are described: its own directory when it holds the
    backbone's config.json (train_pairwise.py adds it to model_best/ and model_final/), else the
    --model_name_or_path recorded in the training run's training_args.json one level up."""
    directory = params_path if os.path.isdir(params_path) else os.path.dirname(params_path) or "."
    if os.path.isfile(os.path.join(directory, "config.json")):
        return directory
    args_file = os.path.join(os.path.dirname(os.path.abspath(directory)), "training_args.json")
    if os.path.isfile(args_file):
        with open(args_file, encoding="utf-8") as f:
            recorded = json.load(f).get("model_name_or_path")
        if recorded:
            return recorded
    raise ConfigError(
        f"--params_path {params_path}: cannot tell its backbone (no config.json next to it, no training_args.json "
        f"above it); give --model_name_or_path"
    )


def read_mark_matches(model_dir):
    """Whether an exported reranker (or checkpoint directory) was trained with exact-match token types."""
    return bool(read_encoder_config(model_dir).get("mark_matches", False))
