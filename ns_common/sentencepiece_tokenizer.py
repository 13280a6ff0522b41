"""The tokenizer of a converted pretrained encoder (pretrained/convert.py): a SentencePiece Unigram model, as
multilingual-e5-small (XLM-RoBERTa's vocabulary) was trained with, as a PaddleNLP tokenizer every stage loads from
the save_pretrained directory.

Segmentation is SentencePiece's own Viterbi over the pieces' scores (`sentencepiece.model`, written from the
source's pieces and scores with the token ids as they are: `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, so a piece's
SentencePiece id is the model's token id). The source's character normalization (NFKC-like: full-width to ASCII,
control characters dropped, every blank to a space) is kept beside it as `normalization.json` and applied first.
A text is `<s> pieces </s>`, a pair `<s> a </s></s> b </s>`, token types all 0.

The model was trained with a prefix on each side of a search: `query: ` before a query and `passage: ` before a
document. They are this tokenizer's `query_prefix` / `doc_prefix` (saved in tokenizer_config.json), added by
`ns_common.text.with_role` wherever a stage encodes a query or a document.
"""

import json
import os

import sentencepiece as spm

from ns_common.utils import quiet_paddlenlp

SPIECE_UNDERLINE = "\u2581"
MODEL_FILE = "sentencepiece.model"
NORMALIZATION_FILE = "normalization.json"

quiet_paddlenlp()
from paddlenlp.transformers import PretrainedTokenizer  # noqa: E402


def write_sentencepiece_model(pieces, scores, path, special_ids) -> None:
    """A Unigram ModelProto of the pieces (index = id) and scores; normalization is done before it (identity)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    piece_type = pb.ModelProto.SentencePiece.Type
    control = {special_ids["bos"], special_ids["eos"], special_ids["pad"]}
    for i, (piece, score) in enumerate(zip(pieces, scores)):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if i == special_ids["unk"]:
            entry.type = piece_type.UNKNOWN
        elif i in control or (piece.startswith("<") and piece.endswith(">") and float(score) == 0.0):
            entry.type = piece_type.CONTROL  # <s> <pad> </s> <mask>: never matched in text
        else:
            entry.type = piece_type.NORMAL
    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.UNIGRAM
    spec.vocab_size = len(pieces)
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = (special_ids[k] for k in ("unk", "bos", "eos", "pad"))
    spec.unk_piece, spec.bos_piece, spec.eos_piece, spec.pad_piece = (
        pieces[special_ids[k]] for k in ("unk", "bos", "eos", "pad")
    )
    norm = proto.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = True
    norm.remove_extra_whitespaces = True
    norm.escape_whitespaces = True
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


class SentencePieceTokenizer(PretrainedTokenizer):
    """A PaddleNLP tokenizer over a SentencePiece Unigram model whose ids are the model's token ids."""

    resource_files_names = {"sentencepiece_model_file": MODEL_FILE, "normalization_file": NORMALIZATION_FILE}
    pretrained_resource_files_map = {"sentencepiece_model_file": {}, "normalization_file": {}}
    pretrained_init_configuration = {}
    model_input_names = ["input_ids", "token_type_ids"]

    def __init__(
        self,
        sentencepiece_model_file,
        normalization_file=None,
        query_prefix="",
        doc_prefix="",
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        **kwargs,
    ):
        self.sentencepiece_model_file = sentencepiece_model_file
        self.normalization_file = normalization_file
        self.sp_model = spm.SentencePieceProcessor(model_file=sentencepiece_model_file)
        table = {}
        if normalization_file and os.path.isfile(normalization_file):
            with open(normalization_file, encoding="utf-8") as f:
                table = {ord(k): v for k, v in json.load(f).items()}
        self.normalization_table = table
        self.query_prefix, self.doc_prefix = query_prefix, doc_prefix
        self._mask_piece = mask_token if self.sp_model.piece_to_id(mask_token) != self.sp_model.unk_id() else None
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            sep_token=sep_token,
            cls_token=cls_token,
            unk_token=unk_token,
            pad_token=pad_token,
            mask_token=mask_token if self._mask_piece else None,
            query_prefix=query_prefix,
            doc_prefix=doc_prefix,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def get_vocab(self) -> dict:
        return {self.sp_model.id_to_piece(i): i for i in range(self.vocab_size)}

    def normalize(self, text: str) -> str:
        return text.translate(self.normalization_table)

    def encode_ids(self, text: str) -> list:
        """The model's token ids of text, no special tokens: the fast path of ns_common.text.token_ids."""
        return self.sp_model.encode(self.normalize(text))

    def _tokenize(self, text):
        return self.sp_model.encode(self.normalize(text), out_type=str)

    def _convert_token_to_id(self, token):
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index):
        return self.sp_model.id_to_piece(int(index))

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + token_ids_0 + sep
        return cls + token_ids_0 + sep + sep + token_ids_1 + sep

    def build_offset_mapping_with_special_tokens(self, offset_mapping_0, offset_mapping_1=None):
        if offset_mapping_1 is None:
            return [(0, 0)] + offset_mapping_0 + [(0, 0)]
        return [(0, 0)] + offset_mapping_0 + [(0, 0), (0, 0)] + offset_mapping_1 + [(0, 0)]

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            specials = {self.cls_token_id, self.sep_token_id, self.pad_token_id}
            return [1 if t in specials else 0 for t in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def num_special_tokens_to_add(self, pair=False):
        return 4 if pair else 2

    def save_resources(self, save_directory):
        import shutil

        for source, name in (
            (self.sentencepiece_model_file, MODEL_FILE),
            (self.normalization_file, NORMALIZATION_FILE),
        ):
            target = os.path.join(save_directory, name)
            if source and os.path.isfile(source) and os.path.abspath(source) != os.path.abspath(target):
                shutil.copyfile(source, target)
