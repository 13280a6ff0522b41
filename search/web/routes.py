"""The routes: translate a request into one SearchSystem call and its Results into the JSON answer. No search logic
here: the checks are the HTTP API's own limits (--max_top_k, --max_text_length, --max_texts) and its filters, which
become a Milvus expression written from the collection's own facet values (never from the request's text)."""

import json
import os
import re
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from ns_common.text import has_visible_text
from search.highlight import highlight_spans
from search.system import SearchSystem
from search.web.errors import ApiError, printable
from search.web.schemas import DeleteRequest, EmbedRequest, MoreLikeThisRequest, SearchRequest
from search.web.settings import Settings

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
BAD_CHARACTERS = re.compile("[\ud800-\udfff\x00]")

router = APIRouter()


def get_system(request: Request) -> SearchSystem:
    return request.app.state.system


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# what a route declares to be given the shared search system and the settings (FastAPI dependencies)
System = Annotated[SearchSystem, Depends(get_system)]
Config = Annotated[Settings, Depends(get_settings)]


@router.get("/api/health", summary="Service status: model, collection, modes, reranker, limits (HEAD too)")
@router.head("/api/health", include_in_schema=False)  # the same route for HEAD, one operation in the OpenAPI
def health(system: System, settings: Config):
    """Status, with a live count of the collection (so a broken Milvus shows here as a 503)."""
    return {
        "status": "ok",
        "model": settings.model_name,
        "dim": system.dim,
        "max_seq_length": settings.max_seq_length,
        "collection": system.collection,
        "uri": system.uri,
        "documents": system.documents(),
        "modes": system.modes,
        "default_mode": system.mode,
        "reranker": settings.reranker_name,
        "facets": system.facets,
        "uptime_s": round(time.time() - settings.started, 1),
        "limits": settings.limits,
    }


@router.post("/api/embed", summary="Texts -> L2-normalised vectors of the recall model")
def embed(request: EmbedRequest, system: System, settings: Config):
    if not request.texts:
        raise ApiError(422, "texts is empty: give at least one text")
    if len(request.texts) > settings.max_texts:
        raise ApiError(422, f"{len(request.texts)} texts; the limit is {settings.max_texts} per request (--max_texts)")
    for i, text in enumerate(request.texts):
        check_text(text, f"texts[{i}]", settings)
    vectors, timings = system.encode(request.texts, timings=True)
    return {
        "model": settings.model_name,
        "dim": int(vectors.shape[1]),
        "vectors": vectors.tolist(),
        "norms": np.linalg.norm(vectors, axis=1).tolist(),
        "timings_ms": timings,
    }


@router.post("/api/search", summary="Query -> top-K documents (system, dense, bm25 or hybrid; optional rerank)")
def search(request: SearchRequest, system: System, settings: Config):
    check_text(request.query, "query", settings)
    check_top_k(request.top_k, settings)
    filters = given_filters(request)
    mode = request.mode or system.mode
    results = system.search(
        request.query,
        mode=mode,
        rerank=request.rerank,
        filter=filter_expression(filters, system.facets),
        top_k=request.top_k,
    )
    return answer(request.query, mode, request.rerank, request.top_k, filters, results)


@router.post("/api/more_like_this", summary="A stored paper -> the top-K papers like it (itself left out)")
def more_like_this(request: MoreLikeThisRequest, system: System, settings: Config):
    """Papers like stored paper `id` among those the filters hold for; a hit's `matched`: the paper's keywords
    (else its title's words) it shares."""
    check_top_k(request.top_k, settings)
    if not system.keyed_by_paper and not isinstance(request.id, int):
        raise ApiError(422, "id: Input should be a valid integer (the paper's line in the corpus)")
    filters = given_filters(request)
    results = system.more_like_this(request.id, top_k=request.top_k, filter=filter_expression(filters, system.facets))
    data = answer(results.source["text"], "more_like_this", False, request.top_k, filters, results)
    return {**data, "source": results.source}


@router.get("/api/paper/{paper_id}", summary="A stored paper: title, fields, abstract (HEAD too)")
@router.head("/api/paper/{paper_id}", include_in_schema=False)
def paper(paper_id: str, system: System):
    """What a card shows when it is opened (the abstract is not sent with every hit); an unknown id is a 404. The id is
    the paper's own (a collection keyed by paper ids) or its corpus line, an integer (else a 422)."""
    if not system.keyed_by_paper and not paper_id.isdecimal():
        raise ApiError(
            422, f"paper id {printable(paper_id)!r}: an integer (the paper's line in the corpus) is expected"
        )
    return system.paper(paper_id)


@router.post("/api/delete", summary="Remove stored papers by their own ids (only with --allow_delete)")
def delete(request: DeleteRequest, system: System, settings: Config):
    """Deletes papers of a collection keyed by paper ids; every search after the answer, here and in any process
    searching the collection, no longer finds them. Refused (403) unless the service runs with --allow_delete."""
    if not settings.allow_delete:
        raise ApiError(403, "deleting papers is off: start the service with --allow_delete to allow it")
    if not system.keyed_by_paper:
        raise ApiError(
            409, f"collection {system.collection} is keyed by corpus lines, not paper ids: nothing to delete by id"
        )
    if not request.ids:
        raise ApiError(422, "ids is empty: give the ids of the papers to delete")
    deleted = system.delete(request.ids)
    return {"deleted": deleted, "not_found": [i for i in request.ids if i not in set(deleted)]}


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
def page():
    return FileResponse(os.path.join(STATIC_DIR, "index.html"))


def answer(query, mode, rerank, top_k, filters, results) -> dict:
    """The JSON answer of a search: the hits ranked from 1, and the milliseconds of each step ("milvus": the search
    in Milvus, "wait": queued behind other requests)."""
    timings = {("milvus" if step == "search" else step): ms for step, ms in results.timings_ms.items()}
    return {
        "query": query,
        "mode": mode,
        "rerank": rerank,
        "top_k": top_k,
        "filters": filters,
        "hits": [{"rank": rank, **hit_json(hit)} for rank, hit in enumerate(results, 1)],
        "timings_ms": timings,
    }


def hit_json(hit) -> dict:
    """A Hit as the API answers it: id, score, text, the paper's stored fields, the query keywords it matches, where
    they are in the title ([start, end] character ranges), the ranking's `why` when a model ranked, and its
    recall_score (with rerank_score and recall_rank when the reranker ordered it)."""
    data = hit.to_dict()
    data["fields"] = hit.fields
    data["matched"] = hit.matched
    data["highlights"] = highlight_spans(hit.matched, hit.text)
    if hit.recall_rank is None:
        data["recall_score"] = hit.score
    else:
        data.update(recall_score=hit.recall_score, rerank_score=hit.score, recall_rank=hit.recall_rank)
    return data


def check_text(text, what, settings) -> None:
    if not text.strip():
        raise ApiError(422, f"{what} is empty: give some text")
    if len(text) > settings.max_text_length:
        raise ApiError(
            422, f"{what} has {len(text)} characters; the limit is {settings.max_text_length} (--max_text_length)"
        )
    found = BAD_CHARACTERS.search(text)  # JSON allows "\ud800"; neither the tokenizer nor Milvus can take it
    if found is not None:
        bad = (
            "a NUL character"
            if found.group() == "\x00"
            else f"an unpaired surrogate {found.group()!r} (not Unicode text)"
        )
        raise ApiError(422, f"{what} holds {bad} at character {found.start()}: send UTF-8 text")
    if not has_visible_text(text):
        raise ApiError(
            422,
            f"{what} has no visible character (only blanks, invisible, unassigned or combining ones): give some text",
        )


def check_top_k(top_k, settings) -> None:
    if not 1 <= top_k <= settings.max_top_k:
        raise ApiError(422, f"top_k must be between 1 and {settings.max_top_k} (--max_top_k), got {top_k}")


def given_filters(request) -> dict:
    return request.filters.model_dump(exclude_none=True) if request.filters else {}


def filter_expression(filters, facets) -> str:
    """The Milvus boolean expression of a request's filters ({"category": [...], "discipline": [...], "year_min": y,
    "year_max": y}, each optional, types already checked; "" for none), e.g.
    `category in ["工学", "理学"] and year >= 2010 and year <= 2020`.

    Only values the collection's facets list are accepted, and the expression is written here from them (strings
    quoted by json.dumps), so no text of the request reaches Milvus as an expression. A value the collection does
    not have, a year outside its years, or year_min after year_max: ApiError 422 naming the field."""
    clauses = []
    for name in ("category", "discipline"):
        values = list(dict.fromkeys(filters.get(name) or []))  # an empty list: no condition
        if not values:
            continue
        unknown = [value for value in values if value not in facets[name]]
        if unknown:
            known = list(facets[name])
            offered = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none"
            raise ApiError(
                422, printable(f"filters.{name}: unknown value {unknown[0]!r} (this collection's values: {offered})")
            )
        literals = ", ".join(json.dumps(value, ensure_ascii=False) for value in values)
        clauses.append(f"{name} in [{literals}]")
    year_min, year_max = filters.get("year_min"), filters.get("year_max")
    for key, year, operator in (("year_min", year_min, ">="), ("year_max", year_max, "<=")):
        if year is None:
            continue
        if facets["year"] is None:
            raise ApiError(422, f"filters.{key}: this collection's papers have no year to filter on")
        first, last = facets["year"]
        if not first <= year <= last:
            raise ApiError(422, f"filters.{key}: {year} is outside this collection's years, {first}..{last}")
        clauses.append(f"year {operator} {int(year)}")
    if year_min is not None and year_max is not None and year_min > year_max:
        raise ApiError(422, f"filters.year_min: {year_min} is after filters.year_max {year_max}")
    return " and ".join(clauses)
