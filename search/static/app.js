// The page's logic: plain DOM + fetch, no library, no CDN. Text from the server is inserted with
// textContent only (document titles are data, never HTML).
"use strict";

const $ = (id) => document.getElementById(id);

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function showError(element, error) {
  element.textContent = error ? String(error.message || error) : "";
  element.hidden = !error;
}

function formatTimings(timings) {
  return Object.entries(timings).map(([phase, ms]) => `${phase} ${ms.toFixed(1)} ms`).join(" · ");
}

async function loadStatus() {
  try {
    const response = await fetch("/api/health");
    const health = await response.json();
    $("status").textContent = `${health.documents} 篇文献 documents · 集合 collection ${health.collection} · ` +
      `模型 model ${health.model} (dim ${health.dim}) · 精排 reranker ${health.reranker || "无 none"}`;
    for (const option of $("mode").options) option.disabled = !health.modes.includes(option.value);
    $("mode").value = health.default_mode || health.modes[0];
    $("rerank").disabled = !health.reranker;
    $("top-k").max = health.limits.max_top_k;
    showFacets(health.facets || {});
    document.body.dataset.ready = "true";
  } catch (error) {
    $("status").textContent = `服务不可用 service unavailable: ${error}`;
  }
}

// The filter controls offer what the collection holds (its facets); a collection of titles only has none.
function showFacets(facets) {
  const options = $("category-options");
  options.replaceChildren();
  for (const [category, papers] of Object.entries(facets.category || {})) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = category;
    label.append(box, ` ${category} `);
    const count = document.createElement("small");
    count.textContent = `(${papers})`;
    label.append(count);
    options.append(label);
  }
  $("categories").hidden = options.children.length === 0;
  const years = facets.year;
  $("year-filter").hidden = !years;
  if (years) {
    for (const input of [$("year-min"), $("year-max")]) {
      input.min = years[0];
      input.max = years[1];
    }
    $("year-min").placeholder = years[0];
    $("year-max").placeholder = years[1];
  }
}

function currentFilters() {
  const filters = {};
  const categories = [...$("category-options").querySelectorAll("input:checked")].map((box) => box.value);
  if (categories.length) filters.category = categories;
  if ($("year-min").value !== "") filters.year_min = Number($("year-min").value);
  if ($("year-max").value !== "") filters.year_max = Number($("year-max").value);
  return filters;
}

async function embed() {
  const button = $("embed-button");
  button.disabled = true;
  showError($("embed-error"), null);
  try {
    const result = await postJson("/api/embed", { texts: [$("embed-text").value] });
    const vector = result.vectors[0];
    $("embed-dim").textContent = result.dim;
    $("embed-norm").textContent = result.norms[0].toFixed(4);
    $("embed-model").textContent = result.model;
    $("embed-time").textContent = formatTimings(result.timings_ms);
    $("embed-values").textContent = "[" + vector.slice(0, 8).map((v) => v.toFixed(4)).join(", ") + ", …]";
    $("embed-result").hidden = false;
  } catch (error) {
    $("embed-result").hidden = true;
    showError($("embed-error"), error);
  } finally {
    button.disabled = false;
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The title with the matched words in <mark>: text nodes only. The service's highlight ranges count Unicode code
// points (Python's str), so the title is split into code points, not UTF-16 units.
function highlightedTitle(title, highlights) {
  const heading = element("h3", "title");
  const chars = Array.from(title);
  let at = 0;
  for (const [start, end] of highlights || []) {
    if (start > at) heading.append(chars.slice(at, start).join(""));
    heading.append(element("mark", "", chars.slice(start, end).join("")));
    at = end;
  }
  if (at < chars.length) heading.append(chars.slice(at).join(""));
  return heading;
}

// What each ranking signal means to a reader; the feature's own name (search/features.py) is in the row's tooltip.
const FEATURE_LABELS = {
  bm25_rel: "keyword match vs the best",
  bm25_rank: "place in the keyword search",
  bm25_uni: "single characters matched",
  bm25_bi: "character pairs matched",
  bm25_word: "words matched",
  kw_whole: "keywords found whole",
  kw_whole_frac: "share of keywords found whole",
  kw_any_frac: "share of keywords partly found",
  kw_cov_mean: "how much of each keyword is found",
  kw1_cov: "how much of the first keyword is found",
  title_len: "title length",
  n_keywords: "number of query keywords",
  kw_pos_cov: "leading keywords found",
  kw1_pos: "where the first keyword appears",
  lexical_score: "the lexical model's score",
  cosine: "meaning match (vectors)",
  cosine_rank: "place by meaning",
  cosine_gap: "meaning match vs the best",
  rank_fusion: "keyword and meaning places fused",
  rerank_logit: "the reranker's judgement",
};

// The learned ranking's explanation: its 4 largest feature contributions to the score, as bars scaled to the
// largest of them (right: raised the score, left: lowered it).
function whyChart(why) {
  const chart = element("div", "why");
  chart.append(element("div", "why-title", `排序依据 why (${why.model} model, bias ${why.bias.toFixed(3)})`));
  const top = Object.entries(why.contributions)
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
    .slice(0, 4);
  const largest = Math.max(...top.map(([, value]) => Math.abs(value)), 1e-9);
  for (const [feature, value] of top) {
    const row = element("div", "why-row");
    row.title = `${feature}: ${value >= 0 ? "+" : ""}${value.toFixed(4)}`;
    const track = element("div", "why-track");
    const bar = element("div", `why-bar ${value >= 0 ? "positive" : "negative"}`);
    const width = (50 * Math.abs(value)) / largest; // half the track: it grows from the middle line
    bar.style.width = `${width}%`;
    bar.style.marginLeft = `${value >= 0 ? 50 : 50 - width}%`;
    track.append(bar);
    const name = element("span", "why-name", FEATURE_LABELS[feature] || feature);
    name.dataset.feature = feature;
    row.append(name, track, element("span", "why-value", value.toFixed(3)));
    chart.append(row);
  }
  return chart;
}

// text with every occurrence of the words in <mark> (case-insensitive; text nodes only, never markup)
function markedText(tag, className, text, words) {
  const node = element(tag, className);
  const wanted = [...new Set(words.filter((word) => word.length > 0).map((word) => word.toLowerCase()))];
  const lower = text.toLowerCase();
  let at = 0;
  while (at < text.length) {
    let next = -1;
    let length = 0;
    for (const word of wanted) {
      const found = lower.indexOf(word, at);
      if (found >= 0 && (next < 0 || found < next || (found === next && word.length > length))) {
        next = found;
        length = word.length;
      }
    }
    if (next < 0) break;
    if (next > at) node.append(text.slice(at, next));
    node.append(element("mark", "", text.slice(next, next + length)));
    at = next + length;
  }
  if (at < text.length) node.append(text.slice(at));
  return node;
}

// The paper's abstract, collapsed; fetched when first opened (hits do not carry it), the query's words marked.
function abstractBox(hit, words) {
  const box = element("details", "abstract");
  box.append(element("summary", "", "摘要 abstract"));
  box.addEventListener("toggle", async () => {
    if (!box.open || box.dataset.loaded) return;
    box.dataset.loaded = "true";
    try {
      const response = await fetch(`/api/paper/${encodeURIComponent(hit.id)}`);
      const paper = await response.json();
      if (!response.ok) throw new Error(paper.error || `HTTP ${response.status}`);
      box.append(paper.abstract ? markedText("p", "abstract-text", paper.abstract, words) : element("p", "muted", "(no abstract stored)"));
    } catch (error) {
      box.append(element("p", "error", String(error.message || error)));
    }
  });
  return box;
}

function hitCard(hit, words) {
  const card = element("li", "hit");
  card.dataset.id = hit.id;
  card.append(highlightedTitle(hit.text, hit.highlights));

  const fields = hit.fields || {};
  const meta = element("div", "meta");
  for (const [value, className] of [[fields.category, "category"], [fields.year, "year"], [fields.discipline, "discipline"]]) {
    if (value) meta.append(element("span", className, String(value)));
  }
  const score = hit.rerank_score !== undefined
    ? `rerank ${hit.rerank_score.toFixed(4)} (recall #${hit.recall_rank} ${hit.recall_score.toFixed(4)})`
    : `score ${hit.score.toFixed(4)}`;
  meta.append(element("span", "muted", `#${hit.rank} · id ${hit.id} · ${score}`));
  card.append(meta);

  if (fields.keywords && fields.keywords.length) {
    const matched = (hit.matched || []).map((word) => word.toLowerCase());
    const keywords = element("ul", "keywords");
    for (const keyword of fields.keywords) {
      const isMatched = matched.some((word) => keyword.toLowerCase().includes(word));
      keywords.append(element("li", isMatched ? "matched" : "", keyword));
    }
    card.append(keywords);
  }
  if (hit.why) card.append(whyChart(hit.why));
  card.append(abstractBox(hit, [...words, ...(hit.matched || [])]));

  const more = element("button", "more secondary", "更多类似 more like this");
  more.type = "button";
  more.addEventListener("click", () => moreLikeThis(hit));
  card.append(more);
  return card;
}

let lastSearch = null; // the search's answer, shown again by "back" after a more-like-this

function showResults(result) {
  // the words a card marks in its abstract: the query's (for more like this: what each hit shares with the paper)
  const words = result.mode === "more_like_this" ? [] : result.query.split(/\s+/);
  $("results").replaceChildren(...result.hits.map((hit) => hitCard(hit, words)));
  $("results").hidden = false;
  $("search-timings").textContent = `${result.hits.length} 条结果 hits (${result.mode}` +
    `${result.rerank ? " + rerank" : ""}) · ${formatTimings(result.timings_ms)}`;
  $("more-like").hidden = result.mode !== "more_like_this";
  if (result.mode === "more_like_this") $("more-like-title").textContent = result.source.text;
}

async function runAndShow(request) {
  const button = $("search-button");
  button.disabled = true;
  showError($("search-error"), null);
  try {
    const result = await request();
    showResults(result);
    return result;
  } catch (error) {
    $("results").hidden = true;
    $("more-like").hidden = true;
    $("search-timings").textContent = "";
    showError($("search-error"), error);
    return null;
  } finally {
    button.disabled = false;
  }
}

async function search(event) {
  event.preventDefault();
  lastSearch = await runAndShow(() => postJson("/api/search", {
    query: $("query").value,
    top_k: Number($("top-k").value),
    mode: $("mode").value,
    rerank: $("rerank").checked,
    filters: currentFilters(),
  }));
}

async function moreLikeThis(hit) {
  await runAndShow(() => postJson("/api/more_like_this", {
    id: hit.id,
    top_k: Number($("top-k").value),
    filters: currentFilters(),
  }));
  window.scrollTo(0, $("search-panel").offsetTop);
}

function back() {
  if (lastSearch) {
    showError($("search-error"), null);
    showResults(lastSearch);
  } else {
    $("results").hidden = true;
    $("more-like").hidden = true;
  }
}

$("embed-button").addEventListener("click", embed);
$("search-form").addEventListener("submit", search);
$("back-button").addEventListener("click", back);
loadStatus();
