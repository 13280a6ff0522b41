r"""Screenshot of the web page of a running service (for the README), with headless Chromium.

    bash scripts/run_web_service.sh &              # or python -m search.web_service ...
    python scripts/web_screenshot.py --url http://127.0.0.1:8000 --query "重金属污染 主成分分析 生态风险评价" \
        --mode hybrid [--rerank] --output docs/img/web_demo.png

Needs playwright (requirements.txt) and Chromium (scripts/setup_browser.sh); no browser download.
"""

import argparse
import shutil
import sys

from ns_common.cli import entry_point


@entry_point
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--query", default="重金属污染 主成分分析 生态风险评价")
    parser.add_argument("--text", default="中西方语言与文化的差异", help="text of the vector panel")
    parser.add_argument("--mode", default="hybrid", choices=("dense", "bm25", "hybrid"))
    parser.add_argument("--top_k", type=int, default=10)
    parser.add_argument("--rerank", action="store_true", help="tick the rerank switch (service with --reranker_dir)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--output", default="docs/img/web_demo.png")
    args = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("error: playwright is not installed: pip install -r requirements.txt")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(args.url + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        page.fill("#embed-text", args.text)
        page.click("#embed-button")
        page.wait_for_selector("#embed-result:not([hidden])", timeout=30000)
        page.fill("#query", args.query)
        page.select_option("#mode", args.mode)
        page.fill("#top-k", str(args.top_k))
        if args.rerank:
            page.check("#rerank")
        page.click("#search-button")
        page.wait_for_selector("#results:not([hidden]), #search-error:not([hidden])", timeout=60000)
        page.screenshot(path=args.output, full_page=True)
        browser.close()
    print(
        f"screenshot of {args.url} ({args.mode}{' + rerank' if args.rerank else ''}, query {args.query!r}) -> {args.output}"
    )


if __name__ == "__main__":
    main()
