"""Builds the end-to-end report (report.md, report.json, recall_at_k.png) from what the pipeline's
stages wrote into its output directory:

    python scripts/report.py --output_dir output/pipeline

Reads metrics/*.json (one evaluate.py --output_json per variant), pretrain/*/pretrain_summary.json,
reranker/auc.json, timings.json; adds the machine, library versions and the git commit.
"""
import argparse
import glob
import json
import os
import platform
import subprocess

# Table order and labels: PaddleNLP's ablation rows first, then what PaddleNLP doesn't have.
VARIANTS = [
    ("bm25_reference", "BM25 reference (bm25s, char 1+2-grams): the bar to beat"),
    ("milvus_system", "**the system**: the default search path (fitted fusion + final ranking)"),
    ("untrained", "from-scratch model, untrained"),
    ("inbatch_only", "In-batch Negative only"),
    ("simcse_only", "SimCSE only"),
    ("simcse_inbatch", "SimCSE + In-batch Negative"),
    ("domain_simcse", "Domain pretrain + SimCSE"),
    ("domain_simcse_inbatch", "Domain pretrain + SimCSE + In-batch Negative (+ hard negatives)"),
    ("milvus_dense", "Milvus HNSW, final dense model"),
    ("milvus_bm25", "BM25 in Milvus (char 1+2-grams): the lexical leg"),
    ("milvus_hybrid", "Hybrid: dense + BM25 (Milvus RRF)"),
    ("milvus_fusion", "Fusion: dense + BM25, weights fitted on held-out training queries"),
    ("milvus_dense_rerank", "dense + ERNIE-Gram rerank"),
    ("milvus_bm25_rerank", "BM25 + ERNIE-Gram rerank"),
    ("milvus_hybrid_rerank", "hybrid + ERNIE-Gram rerank"),
    ("milvus_dense_fused", "dense + rerank, fused with the recall ranks (RRF)"),
    ("milvus_bm25_fused", "BM25 + rerank, fused with the recall ranks (RRF)"),
    ("milvus_hybrid_fused", "hybrid + rerank, fused with the recall ranks (RRF)"),
]
METRICS = ["recall@1", "recall@5", "recall@10", "recall@20", "recall@50", "mrr@10"]


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
    versions = {}
    for module in ("paddle", "paddlenlp", "pymilvus"):
        try:
            versions[module] = __import__(module).__version__
        except Exception as e:  # noqa: BLE001 - a report still gets written
            versions[module] = f"unavailable ({type(e).__name__})"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions, "git_commit": commit}


def collect(output_dir):
    rows = {}
    # one evaluate.py --output_json per variant
    for path in sorted(glob.glob(os.path.join(output_dir, "metrics", "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        rows[name] = read_json(path)
    held_out = {os.path.splitext(os.path.basename(p))[0]: read_json(p) for p in sorted(glob.glob(os.path.join(output_dir, "metrics_fit", "*.json")))}
    pretrain = {os.path.basename(os.path.dirname(p)): read_json(p) for p in sorted(glob.glob(os.path.join(output_dir, "pretrain", "*", "pretrain_summary.json")))}
    return {
        "recall": rows,
        "recall_held_out": held_out,
        "pretrain": pretrain,
        "reranker_auc": read_auc(os.path.join(output_dir, "reranker_auc.jsonl")),
        "ranking": read_json(os.path.join(output_dir, "export", "recall", "ranking.json")),
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
    lines = ["", f"## {title}", "", "| model | " + " | ".join(m.replace("recall@", "R@").replace("mrr@10", "MRR@10") for m in METRICS)
             + " | queries |", "|---|" + "---:|" * (len(METRICS) + 1)]
    for key, label in VARIANTS + [(k, k) for k in extra_keys]:
        m = rows.get(key)
        if m:
            lines.append(f"| {label} | " + " | ".join(fmt(m.get(x)) for x in METRICS) + f" | {m.get('queries', '')} |")
    return lines


def markdown(report):
    lines = ["# Neural search: end-to-end report", ""]
    settings = report["settings"]
    if settings:
        lines += [f"Data: `{settings.get('data_dir')}` · preset `{settings.get('preset')}` · device `{settings.get('device')}` · "
                  f"processes {settings.get('nproc')} · Milvus `{settings.get('milvus_uri')}`"]
    known = [key for key, _ in VARIANTS]
    lines += recall_table("Recall on the dev queries", report["recall"], [k for k in report["recall"] if k not in known])
    if report.get("recall_held_out"):
        lines += recall_table("Dense variants on the held-out training queries (never trained on; what a choice between them may use)",
                              report["recall_held_out"])
    ranking = report.get("ranking")
    if ranking:
        lines += ["", f"## The system's fitted ranking ({ranking.get('queries')} held-out training queries, cross-validated; never dev)", "",
                  f"BM25 misses {ranking.get('bm25_failures')} of them at rank 1; the last column counts those each row gets right.", "",
                  "| row | R@1 | R@10 | R@50 | MRR@10 | BM25 failures fixed |", "|---|---:|---:|---:|---:|---:|"]
        for row in ranking.get("cross_validation", []):
            lines.append(f"| {row['row']} | {row['recall@1']:.2f} | {row['recall@10']:.2f} | {row['recall@50']:.2f} | {row['mrr@10']:.2f} | "
                         f"{row['bm25_failures_at_1']} |")
        for stage in ("fusion", "final"):
            entry = ranking.get(stage)
            if entry:
                weights = ", ".join(f"{n} {w:+.3f}" for n, w in zip(entry["features"], entry["weights"]))
                lines.append(f"\n{stage}: {entry['chosen']} ({weights})")
    auc = report.get("reranker_auc")
    if auc:
        lines += ["", "## Reranker AUC on the dev ranking pairs (gold title vs recalled negatives)", "", "| scorer | AUC | positives | negatives |", "|---|---:|---:|---:|"]
        for name, row in auc.items():
            lines.append(f"| {name} | {row['auc']:.3f} | {row.get('positive', '')} | {row.get('negative', '')} |")
    if report["pretrain"]:
        lines += ["", "## Domain pretraining (held-out test split: from-scratch model -> domain model)", "",
                  "| model | steps | MLM loss | MLM acc % | SOP acc % | span acc % | tokens/s | wall s |", "|---|---:|---|---|---|---|---:|---:|"]
        for name, s in report["pretrain"].items():
            before, after = s.get("test_initial", {}), s.get("test_final", {})
            # the span contrast's accuracy among a batch of --micro_batch_size spans: only with --span_contrast
            span = f"{fmt(pct(before.get('span_acc')))} -> {fmt(pct(after.get('span_acc')))}" if "span_acc" in after else ""
            lines.append(f"| {name} | {s.get('steps', '')} | {before.get('mlm_loss', 0):.2f} -> {after.get('mlm_loss', 0):.2f} | "
                         f"{fmt(pct(before.get('mlm_acc')))} -> {fmt(pct(after.get('mlm_acc')))} | {fmt(pct(before.get('sop_acc')))} -> "
                         f"{fmt(pct(after.get('sop_acc')))} | {span} | {s.get('tokens_per_second', 0):.0f} | {s.get('wall_seconds', 0):.0f} |")
    timings = report["timings"]
    if timings:
        lines += ["", "## Stages", "", "| stage | wall s | throughput |", "|---|---:|---|"]
        for stage, t in timings.items():
            lines.append(f"| {stage} | {t.get('seconds', 0):.1f} | {t.get('throughput', '')} |")
    machine = report["machine"]
    lines += ["", "## Machine", "", f"- CPU: {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}",
              "- " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()), f"- git commit: {machine['git_commit']}", "",
              "![Recall@K](recall_at_k.png)", ""]
    return "\n".join(lines)


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
    print(text)
    print(f"report: {os.path.join(args.output_dir, 'report.md')} (+ report.json, recall_at_k.png)")


if __name__ == "__main__":
    main()
