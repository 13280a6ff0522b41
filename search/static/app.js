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
    document.body.dataset.ready = "true";
  } catch (error) {
    $("status").textContent = `服务不可用 service unavailable: ${error}`;
  }
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

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

async function search(event) {
  event.preventDefault();
  const button = $("search-button");
  button.disabled = true;
  showError($("search-error"), null);
  try {
    const result = await postJson("/api/search", {
      query: $("query").value,
      top_k: Number($("top-k").value),
      mode: $("mode").value,
      rerank: $("rerank").checked,
    });
    const rows = $("results").querySelector("tbody");
    rows.replaceChildren();
    for (const hit of result.hits) {
      const row = document.createElement("tr");
      const score = hit.rerank_score !== undefined
        ? `${hit.rerank_score.toFixed(4)} (recall #${hit.recall_rank} ${hit.recall_score.toFixed(4)})`
        : hit.score.toFixed(4);
      row.append(cell(hit.rank, "num"), cell(hit.text, "text"), cell(hit.id, "num"), cell(score, "num"));
      rows.append(row);
    }
    $("results").hidden = false;
    $("search-timings").textContent = `${result.hits.length} 条结果 hits (${result.mode}` +
      `${result.rerank ? " + rerank" : ""}) · ${formatTimings(result.timings_ms)}`;
  } catch (error) {
    $("results").hidden = true;
    $("search-timings").textContent = "";
    showError($("search-error"), error);
  } finally {
    button.disabled = false;
  }
}

$("embed-button").addEventListener("click", embed);
$("search-form").addEventListener("submit", search);
loadStatus();
