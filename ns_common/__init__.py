"""Code that more than one stage needs, one room a concern:

io           every reader and writer of the data files (pairs, corpus, recall_result.txt, JSON Lines)
cli          generic command-line helpers: flag types and checks, the flags that load an encoder
checkpoint   model_state.pdparams and encoder_config.json: save, load, check
semantic     the semantic encoder (SemanticIndexBase, load_encoder, embed_texts)
contrastive  the in-batch loss and the training SimCSE and in-batch negatives share
train_utils  the training loop and its flags (every fine-tuning stage)
recall       dense recall: exact / HNSW search and the recall command
evaluate     Recall@K, MRR, nDCG of a recall result (and during training)
sentencepiece_tokenizer  the tokenizer of a converted pretrained encoder (pretrained/convert.py)
the rest     metrics, text (tokenisation), modeling (backbones), bootstrap, vocab, bm25, negatives, recipe,
             predictor (Paddle Inference), export, semantic_tools, progress, utils (logging, device, seed)
"""

import warnings

# Warnings that paddle and paddlenlp raise on import and that mean nothing to a user of this project (the
# start of each message): paddle.utils.cpp_extension looks for ccache (for compiling custom C++ ops, which
# no stage does), and the setuptools that paddle imports replaces the distutils an earlier import loaded.
# The entry points import ns_common before paddle, so these filters are in place when they are raised; the
# pipeline also passes them to every stage it runs in PYTHONWARNINGS (any import order).
QUIET_WARNINGS = ("No ccache found", "Setuptools is replacing distutils")
for _message in QUIET_WARNINGS:
    warnings.filterwarnings("ignore", message=_message, category=UserWarning)
