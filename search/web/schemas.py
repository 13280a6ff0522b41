"""The JSON API's request bodies (pydantic), importable by a client or a test:

    from search.web.schemas import SearchRequest
    body = SearchRequest(query="语言 文化 差异", mode="bm25", top_k=5).model_dump(exclude_none=True)

Types are strict (top_k 5, not "5", 5.0 or true) and unknown fields are refused: a 422 naming the field. The
service's own limits (--max_top_k, --max_text_length, --max_texts) and the collection's facets are checked by the
routes, which know them."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from search.system import MODES


class Filters(BaseModel):
    """Which papers to search (every field optional; the values /api/health lists under facets)."""

    model_config = ConfigDict(extra="forbid")
    category: list[StrictStr] | None = Field(None, description="papers of any of these categories")
    discipline: list[StrictStr] | None = Field(None, description="papers of any of these disciplines")
    year_min: StrictInt | None = Field(None, description="papers of this year or later")
    year_max: StrictInt | None = Field(None, description="papers of this year or earlier")


FILTERS_FIELD = Field(
    None,
    description="search only the papers these hold for (all given conditions): values the collection's facets "
    "list (GET /api/health), years within its range; anything else is a 422",
)


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(description="texts to embed (at most --max_texts, each at most --max_text_length)")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: StrictStr = Field(description="query text (at most --max_text_length characters)")
    top_k: StrictInt = Field(10, description='hits to return, 1..--max_top_k (an integer: not "5", 5.0 or true)')
    mode: Literal[("system",) + MODES] | None = Field(
        None,
        description="system (the default search path: BM25 candidates reordered by the learned ranking), dense "
        "(vectors), bm25 (character n-grams) or hybrid (both, Milvus RRF); omitted: the service's default",
    )
    rerank: StrictBool = Field(False, description="rerank the recall hits with the ERNIE-Gram reranker")
    filters: Filters | None = FILTERS_FIELD


class MoreLikeThisRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictInt | StrictStr = Field(
        description="a stored paper's id: its own (a collection keyed by paper ids) or its line in the corpus file"
    )
    top_k: StrictInt = Field(10, description="hits to return, 1..--max_top_k")
    filters: Filters | None = FILTERS_FIELD


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[StrictStr] = Field(description="the papers' own ids (a collection keyed by paper ids)", max_length=10000)
