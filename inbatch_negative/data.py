"""In-batch-negatives data: `query<TAB>doc` training pairs (recall/train.csv), optionally with mined hard
negatives (`query<TAB>pos<TAB>neg` triples written by mine_hard_negatives.py)."""

import random

from ns_common.io import read_fields, read_text_pairs, write_lines
from ns_common.text import batch_encode
from ns_common.utils import logger


def read_train_pairs(path):
    return [{"query": q, "doc": d, "negatives": []} for q, d in read_text_pairs(path)]


def read_hard_negatives(path):
    """{(query, pos): [neg, ...]} from a triples file (malformed lines are skipped and counted)."""
    negatives = {}
    for query, pos, neg in read_fields(path, 3):
        negatives.setdefault((query, pos), []).append(neg)
    return negatives


def write_hard_negatives(path, triples):
    return write_lines(path, triples)


def attach_negatives(examples, negatives, source="--hard_negative_file"):
    """Gives each training pair the mined negatives of its (query, doc); logs how many pairs got some."""
    used = set()
    for example in examples:
        key = (example["query"], example["doc"])
        if key in negatives:
            example["negatives"] = negatives[key]
            used.add(key)
    n_with = sum(1 for e in examples if e["negatives"])
    unmatched = len(negatives) - len(used)
    logger.info(
        f"{source}: hard negatives for {n_with} of {len(examples)} training pairs"
        + (f" ({unmatched} mined pairs are not in the training set and are ignored)" if unmatched else "")
    )
    return examples


class InBatchCollator:
    """Tokenises queries, docs and up to `negatives_per_query` hard negatives a pair (drawn with a seeded
    generator, so each epoch may see a different one), plus the false-negative mask of the batch."""

    def __init__(self, tokenizer, max_seq_length=64, negatives_per_query=1, seed=1000):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.negatives_per_query = negatives_per_query
        self.rng = random.Random(seed)

    def __call__(self, examples):
        # here, not at the top: the contrastive module imports paddle, which mine_hard_negatives.py's BM25 mining
        # (a reader of this module) never needs
        from ns_common.contrastive import false_negative_mask

        queries = [e["query"] for e in examples]
        docs = [e["doc"] for e in examples]
        negatives = []
        for e in examples:
            k = min(self.negatives_per_query, len(e["negatives"]))
            negatives += self.rng.sample(e["negatives"], k) if k else []
        q_ids, q_types = batch_encode(queries, self.tokenizer, self.max_seq_length, role="query")
        d_ids, d_types = batch_encode(docs, self.tokenizer, self.max_seq_length, role="doc")
        batch = {
            "query_input_ids": q_ids,
            "query_token_type_ids": q_types,
            "title_input_ids": d_ids,
            "title_token_type_ids": d_types,
            "false_negative_mask": false_negative_mask(queries, docs, negatives),
        }
        if negatives:
            batch["neg_input_ids"], batch["neg_token_type_ids"] = batch_encode(
                negatives, self.tokenizer, self.max_seq_length, role="doc"
            )
        return batch
