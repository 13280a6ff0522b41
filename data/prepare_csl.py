"""Builds the literature-search data layout from CSL (Chinese Scientific Literature, COLING 2022).

    # from the JSON Lines of ../shared/data/csl (papers.jsonl + abstracts.jsonl)
    python data/prepare_csl.py --csl_dir ../shared/data/csl --output_dir data/csl
    # or from the benchmark TSVs of github.com/ydli-ai/CSL (a clone's benchmark/ folder)
    python data/prepare_csl.py --csl_tsv_dir CSL/benchmark --output_dir data/csl

The corpus is written both ways: milvus/milvus_data.csv, one title a line (PaddleNLP's file), and
milvus/papers.jsonl, the same papers line for line as records (id, title, keywords, abstract, category,
discipline) to insert for filtered search.

The task: the query is a paper's keywords joined by a space, the document its title, searched among
every title of the collection. Papers with a title AND keywords are the labelled pairs (split
--dev_ratio into dev, seeded and disjoint); titles and abstracts are the unlabelled domain text. The
ranking files (sort/) pair each labelled query with lexical negatives: titles BM25 (character
unigrams + bigrams) ranks high that are not its gold title. They are the model-free fallback; the
reranker stage can replace them with negatives mined by the recall model.

TSV layout (no header, first column the task prompt):
    cls_ctg/{train,dev,test}.tsv   to category<TAB>title<TAB>category
    ts/{train,dev,test}.tsv        to title<TAB>abstract<TAB>title
    kg/{train,dev,test}.tsv        to keywords<TAB>abstract + " " + title<TAB>keyword_keyword_...
    cls_dcp/{train,dev,test}.tsv   to discipline<TAB>abstract<TAB>discipline
Missing files are fine (the public repo has no ts/kg train split); keywords are matched to their
paper by the abstract + title text, not by line number.

CSL may not be redistributed (non-commercial research use): write the output outside the repository
or leave it untracked (data/csl/ is git-ignored).
"""

import argparse
import os
import re
import sys

from layout import LAYOUT_FILES, format_counts, write_layout

from ns_common.cli import check_outputs, entry_point, fail
from ns_common.io import DataFileError, check_file, read_fields, read_jsonl
from ns_common.records import Record
from ns_common.utils import Timer, logger

TSV_SPLITS = ("train", "dev", "test")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csl_dir", help="folder with papers.jsonl and abstracts.jsonl (e.g. ../shared/data/csl)")
    source.add_argument(
        "--csl_tsv_dir", help="the benchmark/ folder of github.com/ydli-ai/CSL ({ts,kg,cls_ctg,cls_dcp}/*.tsv)"
    )
    parser.add_argument(
        "--output_dir", required=True, help="where the layout (milvus/, recall/, sort/, pretrain/) is written"
    )
    parser.add_argument(
        "--dev_ratio", type=float, default=0.2, help="share of the labelled pairs held out as dev (default 0.2)"
    )
    parser.add_argument(
        "--seed", type=int, default=1000, help="seed of the train/dev split and of the negative sampling"
    )
    parser.add_argument(
        "--neg_per_query", type=int, default=4, help="lexical negatives per labelled query in sort/ (default 4)"
    )
    parser.add_argument(
        "--neg_pool",
        type=int,
        default=10,
        help="negatives are drawn from this many best BM25 titles eligible as negatives (ns_common/negatives.py; default 10)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the files of an existing layout in --output_dir"
    )
    args = parser.parse_args(argv)
    if not 0 < args.dev_ratio < 1:
        parser.error(f"--dev_ratio must be between 0 and 1 (exclusive), got {args.dev_ratio}")
    if args.neg_per_query < 1 or args.neg_pool < args.neg_per_query:
        parser.error("--neg_per_query must be >= 1 and --neg_pool >= --neg_per_query")
    return args


def normalize(text):
    return " ".join(str(text).split())


def chinese_periods(text):
    """CSL abstracts end sentences with an ASCII '.', which the pretraining sentence splitter (。！？；)
    does not see; turn a '.' that follows a Chinese character or closing bracket into '。'.
    Decimals (0.97), abbreviations and latin text are left alone."""
    return re.sub(r"(?<=[\u4e00-\u9fff）)”\"%])\.(?!\d)", "。", text)


def split_keywords(text):
    """kg keywords are joined by '_'; a few lines use spaces instead."""
    parts = [normalize(k) for k in text.split("_")]
    if len(parts) == 1:
        parts = text.split()
    return [k for k in parts if k]


def paper(title, abstract="", keywords=(), paper_id="", category="", discipline=""):
    return {
        "title": normalize(title),
        "abstract": normalize(abstract),
        "keywords": [normalize(k) for k in keywords if normalize(k)],
        "id": normalize(paper_id),
        "category": normalize(category),
        "discipline": normalize(discipline),
    }


def text_or_empty(value):
    """An optional text field of a CSL record (id, category, discipline): "" when absent or not text."""
    return value if isinstance(value, str) else ""


def paper_record(p):
    """The papers.jsonl record of a paper (ns_common.records)."""
    return Record(
        title=p["title"],
        paper_id=p["id"],
        keywords=tuple(p["keywords"]),
        abstract=p["abstract"],
        category=p["category"],
        discipline=p["discipline"],
    )


def keyword_list(value):
    """A record's keywords: a list of texts (items that are not text dropped), a text joined by '_' (CSL's own
    separator, split_keywords), or null/absent: none. None for anything else (a number, an object)."""
    if value is None:
        return []
    if isinstance(value, str):
        return split_keywords(value)
    if isinstance(value, list):
        return [k for k in value if isinstance(k, str)]
    return None


def record_problem(obj, text_field):
    """Why a papers.jsonl / abstracts.jsonl record is skipped (None: usable): text_field (title or abstract) null,
    not text or empty; an abstract that is not text; keywords neither a list nor text."""
    if not isinstance(obj.get(text_field), str):
        return f"records whose {text_field} is not text (null, a number, ...)"
    if not normalize(obj[text_field]):
        return f"records with an empty {text_field}"
    if obj.get("abstract") is not None and not isinstance(obj["abstract"], str):
        return "records whose abstract is not text"
    if keyword_list(obj.get("keywords")) is None:
        return "records whose keywords are neither a list nor text"
    return None


def read_csl_jsonl(csl_dir):
    """papers.jsonl (every title; dev papers carry abstract + keywords) and abstracts.jsonl (abstracts only). A line
    that is not a JSON object (or holds a NUL or a lone surrogate), a record whose title (abstract) is null, not text
    or empty, or a paper repeating an earlier id is skipped and counted in one warning per file naming its lines."""
    papers_path = os.path.join(csl_dir, "papers.jsonl")
    abstracts_path = os.path.join(csl_dir, "abstracts.jsonl")
    check_file(abstracts_path)  # both files are needed: fail before reading the first one
    seen_ids = set()

    def paper_problem(obj):
        problem = record_problem(obj, "title")
        paper_id = obj.get("id")
        if problem is None and isinstance(paper_id, str) and paper_id:
            if paper_id in seen_ids:
                return "records repeating an earlier id"
            seen_ids.add(paper_id)
        return problem

    papers = [
        paper(
            obj["title"],
            obj.get("abstract") or "",
            keyword_list(obj.get("keywords")),
            text_or_empty(obj.get("id")),
            text_or_empty(obj.get("category")),
            text_or_empty(obj.get("discipline")),
        )
        for obj in read_jsonl(papers_path, required=("title",), check=paper_problem)
    ]
    extra_abstracts = [
        paper("", obj["abstract"], keyword_list(obj.get("keywords")))
        for obj in read_jsonl(abstracts_path, required=("abstract",), check=lambda obj: record_problem(obj, "abstract"))
    ]
    return papers, extra_abstracts


def read_csl_tsv(tsv_dir):
    """Papers of the benchmark TSVs: titles from cls_ctg and ts, abstracts from ts (and cls_dcp),
    keywords from kg matched by their abstract + title text."""

    def tsv(task, split):
        path = os.path.join(tsv_dir, task, f"{split}.tsv")
        return list(read_fields(path, 3)) if os.path.isfile(path) else []

    found = [
        f"{task}/{split}.tsv"
        for task in ("ts", "kg", "cls_ctg", "cls_dcp")
        for split in TSV_SPLITS
        if os.path.isfile(os.path.join(tsv_dir, task, f"{split}.tsv"))
    ]
    if not found:
        raise DataFileError(f"no {{ts,kg,cls_ctg,cls_dcp}}/{{train,dev,test}}.tsv under {tsv_dir}")
    logger.info(f"{tsv_dir}: reading {', '.join(found)}")

    papers, extra_abstracts = [], []
    n_unmatched = 0
    category_of = {normalize(title): category for split in TSV_SPLITS for _, title, category in tsv("cls_ctg", split)}
    for split in TSV_SPLITS:
        keywords_of = {normalize(text): split_keywords(kws) for _, text, kws in tsv("kg", split)}
        ts_abstracts = set()
        for _, abstract, title in tsv("ts", split):
            keywords = keywords_of.pop(normalize(abstract + " " + title), [])
            papers.append(paper(title, abstract, keywords, category=category_of.get(normalize(title), "")))
            ts_abstracts.add(normalize(abstract))
        n_unmatched += len(keywords_of)
        for _, title, category in tsv("cls_ctg", split):
            # titles already seen in ts are de-duplicated by the layout writer (the first record of a title is kept)
            papers.append(paper(title, category=category))
        for _, abstract, _ in tsv("cls_dcp", split):
            if normalize(abstract) not in ts_abstracts:
                extra_abstracts.append(paper("", abstract))
    if n_unmatched:
        logger.warning(
            f"{tsv_dir}: {n_unmatched} kg lines matched no ts paper (abstract + title differ); their keywords are unused"
        )
    return papers, extra_abstracts


def domain_document(p):
    """One pretraining document: title, abstract and keywords, sentences ended by 。.

    The keywords of a labelled paper (title + keywords) are left out: they are a query and its gold title,
    and pretraining on them would leak the dev pairs into every model warm-started from it."""
    parts = [p["title"]] if p["title"] else []
    if p["abstract"]:
        parts.append(chinese_periods(p["abstract"]).rstrip("。"))
    if p["keywords"] and not p["title"]:
        parts.append("关键词：" + "，".join(p["keywords"]))
    return "。".join(parts) + "。"


@entry_point
def main(argv=None):
    args = parse_args(argv)
    timer = Timer()
    source = args.csl_dir or args.csl_tsv_dir
    if not os.path.isdir(source):
        fail(f"{'--csl_dir' if args.csl_dir else '--csl_tsv_dir'}: folder not found: {source}")
    check_outputs(dirs=[("output_dir", args.output_dir)])
    existing = [f for f in LAYOUT_FILES if os.path.exists(os.path.join(args.output_dir, f))]
    if existing and not args.overwrite:
        fail(
            f"--output_dir {args.output_dir} already holds a layout ({existing[0]}, ...); pass --overwrite to replace it"
        )

    try:
        papers, extra_abstracts = read_csl_jsonl(source) if args.csl_dir else read_csl_tsv(source)
    except DataFileError as e:
        fail(str(e))
    if not papers:
        fail(f"{source}: no paper with a title found")

    labelled = [(" ".join(p["keywords"]), p["title"]) for p in papers if p["keywords"]]
    try:
        counts = write_layout(
            args.output_dir,
            corpus_titles=[p["title"] for p in papers],
            labelled_pairs=labelled,
            unsupervised_texts=[p["title"] for p in papers] + [p["abstract"] for p in papers + extra_abstracts],
            domain_docs=[domain_document(p) for p in papers + extra_abstracts],
            dev_ratio=args.dev_ratio,
            seed=args.seed,
            neg_per_query=args.neg_per_query,
            neg_pool=args.neg_pool,
            records=[paper_record(p) for p in papers],
        )
    except ValueError as e:
        fail(f"{source}: {e}")
    print(
        f"wrote {args.output_dir} from {source} in {timer.seconds:.1f}s: {len(papers)} papers read, "
        f"{len(labelled)} with keywords; " + format_counts(counts)
    )


if __name__ == "__main__":
    sys.exit(main())
