"""Builds the end-to-end report (report.md, report.json, recall_at_k.png) from what the pipeline's
stages wrote into its output directory:

    python scripts/report.py --output_dir output/pipeline

Reads metrics/*.json (one evaluate.py --output_json per variant), pretrain/*/pretrain_summary.json,
reranker/auc.json, export/ranking/ranking.json (the learned ranking's cross-validation; its feature importance
becomes ranking_importance.png), timings.json; adds the machine, library versions and the git commit.
"""

import argparse
import glob
import importlib.metadata
import json
import os
import platform
import subprocess

from ns_common.cli import entry_point

# Table order and labels: PaddleNLP's ablation rows first, then what PaddleNLP doesn't have.
VARIANTS = [
    ("bm25_reference", "BM25 reference (bm25s, char 1+2-grams): the bar to beat"),
    ("milvus_system", "**the system**: the default search path (BM25 top 50 + the learned ranking)"),
    ("untrained", "from-scratch model, untrained"),
    ("inbatch_only", "In-batch Negative only"),
    ("simcse_only", "SimCSE only"),
    ("simcse_inbatch", "SimCSE + In-batch Negative"),
    ("domain_simcse", "Domain pretrain + SimCSE"),
    ("domain_simcse_inbatch", "Domain pretrain + SimCSE + In-batch Negative (+ hard negatives)"),
    ("pretrained_zero_shot", "pretrained multilingual-e5-small, converted, zero-shot"),
    ("pretrained_domain", "pretrained + domain pretraining"),
    ("pretrained_simcse", "pretrained (+ domain) + SimCSE"),
    ("pretrained_inbatch", "pretrained (+ domain, SimCSE) + In-batch Negative (+ hard negatives)"),
    ("milvus_dense", "Milvus, final dense model (the dense leg)"),
    ("milvus_bm25", "BM25 in Milvus (char 1+2-grams): the lexical leg"),
    ("milvus_hybrid", "Hybrid: dense + BM25 (Milvus RRF)"),
    ("milvus_dense_rerank", "dense + ERNIE-Gram rerank"),
    ("milvus_bm25_rerank", "BM25 + ERNIE-Gram rerank"),
    ("milvus_hybrid_rerank", "hybrid + ERNIE-Gram rerank"),
    ("milvus_dense_fused", "dense + rerank, fused with the recall ranks (RRF)"),
    ("milvus_bm25_fused", "BM25 + rerank, fused with the recall ranks (RRF)"),
    ("milvus_hybrid_fused", "hybrid + rerank, fused with the recall ranks (RRF)"),
]
METRICS = ["recall@1", "recall@5", "recall@10", "recall@20", "recall@50", "mrr@10"]

# the libraries whose versions the report names -> their distributions (paddle's CPU or GPU build)
LIBRARIES = {"paddle": ("paddlepaddle", "paddlepaddle-gpu"), "paddlenlp": ("paddlenlp",), "pymilvus": ("pymilvus",)}


def read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def machine_info():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    # the installed distributions' versions, read from their metadata: importing the libraries for their
    # __version__ would cost seconds (PaddleNLP imports most of itself)
    versions = {}
    for module, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                versions[module] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                versions[module] = "unavailable (not installed)"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
    }


def collect(output_dir):
    rows = {}
    # one evaluate.py --output_json per variant
    for path in sorted(glob.glob(os.path.join(output_dir, "metrics", "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        rows[name] = read_json(path)
    held_out = {
        os.path.splitext(os.path.basename(p))[0]: read_json(p)
        for p in sorted(glob.glob(os.path.join(output_dir, "metrics_fit", "*.json")))
    }
    pretrain = {
        os.path.basename(os.path.dirname(p)): read_json(p)
        for p in sorted(glob.glob(os.path.join(output_dir, "pretrain", "*", "pretrain_summary.json")))
    }
    return {
        "recall": rows,
        "recall_held_out": held_out,
        "pretrain": pretrain,
        "reranker_auc": read_auc(os.path.join(output_dir, "reranker_auc.jsonl")),
        "ranking": read_json(os.path.join(output_dir, "export", "ranking", "ranking.json")),
        "timings": read_json(os.path.join(output_dir, "timings.json")) or {},
        "settings": read_json(os.path.join(output_dir, "settings.json")) or {},
        "machine": machine_info(),
    }


def read_auc(path):
    """ernie_matching/evaluate.py --results_file lines; the last line of each scorer wins (re-runs append)."""
    if not os.path.isfile(path):
        return None
    scores = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                label = "ERNIE-Gram reranker" if row["scorer"] == "reranker" else "recall model cosine"
                scores[label] = {"auc": row["auc"], **{k: row[k] for k in ("positive", "negative") if k in row}}
    return scores


def fmt(value):
    return "" if value is None else f"{value:.2f}"


def recall_table(title, rows, extra_keys=()):
    """A "## title" section: the Recall@K / MRR@10 table of rows (name -> metrics), VARIANTS' order and labels."""
    lines = [
        "",
        f"## {title}",
        "",
        "| model | "
        + " | ".join(m.replace("recall@", "R@").replace("mrr@10", "MRR@10") for m in METRICS)
        + " | queries |",
        "|---|" + "---:|" * (len(METRICS) + 1),
    ]
    for key, label in VARIANTS + [(k, k) for k in extra_keys]:
        m = rows.get(key)
        if m:
            lines.append(f"| {label} | " + " | ".join(fmt(m.get(x)) for x in METRICS) + f" | {m.get('queries', '')} |")
    return lines


def markdown(report):
    lines = ["# Neural search: end-to-end report", ""]
    settings = report["settings"]
    if settings:
        lines += [
            f"Data: `{settings.get('data_dir')}` · preset `{settings.get('preset')}` · device `{settings.get('device')}` · "
            f"processes {settings.get('nproc')} · Milvus `{settings.get('milvus_uri')}`"
        ]
    known = [key for key, _ in VARIANTS]
    lines += recall_table(
        "Recall on the dev queries", report["recall"], [k for k in report["recall"] if k not in known]
    )
    if report.get("recall_held_out"):
        lines += recall_table(
            "Dense variants on the held-out training queries (never trained on; what a choice between them may use)",
            report["recall_held_out"],
        )
    lines += ranking_section(report.get("ranking"))
    auc = report.get("reranker_auc")
    if auc:
        lines += [
            "",
            "## Reranker AUC on the dev ranking pairs (gold title vs recalled negatives)",
            "",
            "| scorer | AUC | positives | negatives |",
            "|---|---:|---:|---:|",
        ]
        for name, row in auc.items():
            lines.append(f"| {name} | {row['auc']:.3f} | {row.get('positive', '')} | {row.get('negative', '')} |")
    if report["pretrain"]:
        lines += [
            "",
            "## Domain pretraining (held-out test split: from-scratch model -> domain model)",
            "",
            "| model | steps | MLM loss | MLM acc % | SOP acc % | span acc % | tokens/s | wall s |",
            "|---|---:|---|---|---|---|---:|---:|",
        ]
        for name, s in report["pretrain"].items():
            before, after = s.get("test_initial", {}), s.get("test_final", {})
            # the span contrast's accuracy among a batch of --micro_batch_size spans: only with --span_contrast
            span = (
                f"{fmt(pct(before.get('span_acc')))} -> {fmt(pct(after.get('span_acc')))}"
                if "span_acc" in after
                else ""
            )
            lines.append(
                f"| {name} | {s.get('steps', '')} | {before.get('mlm_loss', 0):.2f} -> {after.get('mlm_loss', 0):.2f} | "
                f"{fmt(pct(before.get('mlm_acc')))} -> {fmt(pct(after.get('mlm_acc')))} | {fmt(pct(before.get('sop_acc')))} -> "
                f"{fmt(pct(after.get('sop_acc')))} | {span} | {s.get('tokens_per_second', 0):.0f} | {s.get('wall_seconds', 0):.0f} |"
            )
    timings = report["timings"]
    if timings:
        lines += ["", "## Stages", "", "| stage | wall s | throughput |", "|---|---:|---|"]
        for stage, t in timings.items():
            lines.append(f"| {stage} | {t.get('seconds', 0):.1f} | {t.get('throughput', '')} |")
    machine = report["machine"]
    lines += [
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}",
        "- " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"- git commit: {machine['git_commit']}",
        "",
        "![Recall@K](recall_at_k.png)",
        "",
    ]
    return "\n".join(lines)


def ranking_section(ranking):
    """The learned ranking: what it serves, the cross-validation table of every feature set (training queries only),
    and the feature importance chart."""
    if not ranking:
        return []
    served = {
        "bm25": "BM25's own order (no learned ranking beat it by a standard error)",
        "lexical": f"the lexical model ({(ranking.get('lexical') or {}).get('set')})",
        "neural": f"the neural model ({(ranking.get('neural') or {}).get('set')})",
    }[ranking["chosen"]]
    queries = ranking.get("queries", {})
    folds = len(ranking.get("fold_models") or [])
    neural_queries = (
        f"over all {queries.get('heldout')} training queries, each scored by a recall model that never trained on it "
        f"(cross-fitting: the served model and {folds} fold models)"
        if folds
        else f"over the {queries.get('heldout')} held-out ones the neural models never trained on"
    )
    lines = [
        "",
        "## The learned ranking (cross-validated over the training queries; never dev)",
        "",
        f"Serves {served}. Lexical rows: {ranking.get('folds')}-fold cross-validation over all {queries.get('train')} training "
        f"queries; neural rows: {neural_queries}. Fixed / broken: "
        "BM25's rank-1 failures the row gets right / BM25's rank-1 successes it loses; gain: mean per-query reciprocal-rank "
        "gain over BM25 (MRR@10 points) and its standard error; * = served.",
        "",
        "| row | queries | R@1 | R@5 | R@10 | MRR@10 | gain vs BM25 (se) | fixed / broken |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ranking.get("cross_validation", []):
        lines.append(
            f"| {row['row']}{' *' if row.get('chosen') else ''} | {row['queries']} | {row['R@1']:.2f} | {row['R@5']:.2f} | "
            f"{row['R@10']:.2f} | {row['MRR@10']:.2f} | {row['gain_vs_bm25']:+.2f} ({row['gain_se']:.2f}) | "
            f"{row['bm25_failures_fixed']} / {row['bm25_successes_broken']} |"
        )
    if ranking.get("importance"):
        lines += ["", "![feature importance](ranking_importance.png)"]
    return lines


def importance_chart(ranking, path):
    """Horizontal bars: each feature's share of the served models' split gain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [(name, shares) for name, shares in (ranking.get("importance") or {}).items() if shares]
    fig, axes = plt.subplots(
        1, len(models), figsize=(5 * len(models), 0.3 * max(len(s) for _, s in models) + 1.5), squeeze=False
    )
    for ax, (name, shares) in zip(axes[0], models):
        items = sorted(shares.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:green")
        ax.set_xlabel("% of the model's split gain")
        ax.set_title(f"{name} model")
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pct(fraction):
    return None if fraction is None else 100.0 * fraction


def chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # grouped horizontal bars, Recall@1 and Recall@10 per row; the keyword-search bar as dashed lines
    rows = [(key, report["recall"][key]) for key, _ in VARIANTS if report["recall"].get(key)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    y = list(range(len(rows)))[::-1]
    for offset, (metric, color) in zip((0.2, -0.2), (("recall@1", "tab:blue"), ("recall@10", "tab:orange"))):
        values = [m.get(metric, 0) for _, m in rows]
        ax.barh([v + offset for v in y], values, height=0.38, color=color, label=metric.replace("recall@", "Recall@"))
        reference = report["recall"].get("bm25_reference", {}).get(metric)
        if reference is not None:
            ax.axvline(reference, color=color, linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels([("▶ " if key == "milvus_system" else "") + key for key, _ in rows], fontsize=8)
    ax.set_xlabel("% of dev queries (dashed: the BM25 reference)")
    ax.set_title("Recall@1 and Recall@10 on the dev queries")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@entry_point
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args()
    report = collect(args.output_dir)
    with open(os.path.join(args.output_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    text = markdown(report)
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    chart(report, os.path.join(args.output_dir, "recall_at_k.png"))
    if (report.get("ranking") or {}).get("importance"):
        importance_chart(report["ranking"], os.path.join(args.output_dir, "ranking_importance.png"))
    print(text)
    print(f"report: {os.path.join(args.output_dir, 'report.md')} (+ report.json, recall_at_k.png)")


if __name__ == "__main__":
    main()
