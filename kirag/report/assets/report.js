// kirag's report and page renderer: draws the JSON payload kirag.report embeds (or the serve
// page fetches). Plain DOM, no library, no network: every string goes in as text, never as HTML.
"use strict";

const KiragView = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const fmt = (x, d = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  const badge = (text, cls) => el("span", { class: "badge " + (cls || "") }, text);

  // A passage with the sentence [start, end) highlighted.
  function passage(text, span) {
    if (!text) return el("div", { class: "passage muted" }, "(passage text not available)");
    if (!span) return el("div", { class: "passage" }, text);
    return el("div", { class: "passage" }, text.slice(0, span[0]),
      el("mark", {}, text.slice(span[0], span[1])), text.slice(span[1]));
  }

  // A reasoning chain as a graph: entities as nodes in order of appearance, each step an arrow
  // head -> tail labelled "n. relation (score)".
  function chainGraph(steps) {
    const names = [];
    const index = (name) => {
      const key = name.toLowerCase();
      let i = names.findIndex((n) => n.toLowerCase() === key);
      if (i < 0) { names.push(name); i = names.length - 1; }
      return i;
    };
    const edges = steps.map((s, n) => ({ from: index(s.head), to: index(s.tail), n: n + 1, s }));
    const gap = 190, width = Math.max(1, names.length) * gap + 20, height = 70 + 26 * edges.length;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      class: "chain-graph", "aria-label": "reasoning chain" });
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#1a56db" }));
    defs.append(marker);
    root.append(defs);
    const x = (i) => 20 + i * gap + 75, y = 30;
    edges.forEach((e, k) => {
      const x1 = x(e.from), x2 = x(e.to), lift = 30 + 24 * k;
      const path = e.from === e.to
        ? `M${x1 - 20},${y + 14} C${x1 - 40},${y + lift + 20} ${x1 + 40},${y + lift + 20} ${x1 + 20},${y + 14}`
        : `M${x1},${y + 14} C${x1},${y + lift} ${x2},${y + lift} ${x2},${y + 14}`;
      root.append(svg("path", { d: path, fill: "none", stroke: "#1a56db", "stroke-width": 1.5,
        "marker-end": "url(#arrow)" }));
      const label = `${e.n}. ${e.s.relation}` + (e.s.score !== undefined ? ` (${fmt(e.s.score)})` : "");
      root.append(svg("text", { x: (x1 + x2) / 2, y: y + lift - 4 + (e.from === e.to ? 14 : 0),
        "text-anchor": "middle", fill: "#1d2330" }, label));
    });
    names.forEach((name, i) => {
      root.append(svg("rect", { x: x(i) - 75, y: y - 14, width: 150, height: 28, rx: 12,
        fill: "#eef3ff", stroke: "#1a56db" }));
      root.append(svg("text", { x: x(i), y: y + 4, "text-anchor": "middle", class: "entity" },
        name.length > 26 ? name.slice(0, 25) + "…" : name));
    });
    return root;
  }

  function pager(total, size, state, redraw) {
    const pages = Math.max(1, Math.ceil(total / size));
    state.page = Math.min(state.page, pages - 1);
    const go = (p) => () => { state.page = Math.max(0, Math.min(pages - 1, p)); redraw(); };
    return el("div", { class: "pager" },
      el("button", { onclick: go(state.page - 1), disabled: state.page === 0 }, "‹ prev"),
      ` page ${state.page + 1} of ${pages} (${total} shown by the filters) `,
      el("button", { onclick: go(state.page + 1), disabled: state.page >= pages - 1 }, "next ›"));
  }

  // ---- KiRAG answers ----
  function kiragStep(step, n) {
    return el("tr", {},
      el("td", { class: "num" }, n + 1),
      el("td", {}, `<${step.head}; ${step.relation}; ${step.tail}>`),
      el("td", { class: "num" }, fmt(step.score)),
      el("td", {}, step.doc_id,
        el("details", {}, el("summary", {}, "source passage"), passage(step.passage, step.span))));
  }

  function kiragCard(item) {
    const best = item.chains[0];
    const marks = [];
    if (item.correct) marks.push(badge(`EM ${fmt(item.correct.em, 0)} · F1 ${fmt(item.correct.f1, 2)}`,
      item.correct.em ? "ok" : "bad"));
    if (item.support_found !== null && item.support_found !== undefined)
      marks.push(badge(item.support_found ? "gold support found" : "gold support missed",
        item.support_found ? "ok" : "bad"));
    const chains = item.chains.map((chain, i) => el("div", { class: "chain" },
      el("div", {}, el("b", {}, i === 0 ? "best chain" : `chain ${i + 1}`),
        ` score ${fmt(chain.score)}`, chain.finished ? badge("finished") : null,
        chain.answer ? ` → ${chain.answer}` : ""),
      chain.steps.length ? chainGraph(chain.steps) : el("div", { class: "muted" }, "(no triples)"),
      chain.steps.length ? el("table", { class: "steps" },
        el("tr", {}, el("th", {}, "#"), el("th", {}, "triple"), el("th", { class: "num" }, "score"),
          el("th", {}, "document")), chain.steps.map(kiragStep)) : null,
      (chain.texts || []).length ? el("ol", {}, chain.texts.map((t) => el("li", {}, t))) : null));
    const docs = el("table", { class: "documents" },
      el("tr", {}, el("th", { class: "num" }, "rank"), el("th", {}, "document"),
        el("th", { class: "num" }, "score"), el("th", {}, "why")),
      item.documents.map((d) => el("tr", {},
        el("td", { class: "num" }, d.rank),
        el("td", { class: d.gold ? "gold" : "" }, d.id, d.title ? ` — ${d.title}` : "",
          d.gold ? " ★ gold" : ""),
        el("td", { class: "num" }, fmt(d.score)),
        el("td", {}, d.why.length ? d.why.map((w) => el("div", {}, `${w.triple} (${fmt(w.score)})`))
          : el("span", { class: "muted" }, "first-stage retrieval")))));
    return el("section", { class: "card kirag-item", "data-id": item.id },
      el("h3", {}, item.question),
      el("div", {}, el("b", {}, "answer: "), item.answer || "(no answer)", " ",
        el("span", { class: "muted" }, `[${item.answered_by || ""}]`), ...marks),
      item.gold_answers ? el("div", { class: "muted" }, "gold: " + item.gold_answers.join(" | ")) : null,
      item.id ? el("div", { class: "muted" }, `id ${item.id}`) : null,
      chains.length ? chains : el("div", { class: "muted" }, "(no chain)"),
      el("details", { open: true }, el("summary", {}, `documents in rank order (${item.documents.length})`), docs));
  }

  function kiragFilters(state) {
    return [
      el("label", {}, el("input", { type: "checkbox", id: "only-wrong", checked: state.wrong,
        onchange: (e) => { state.wrong = e.target.checked; state.page = 0; state.redraw(); } }), " wrong answers only"),
      el("label", {}, el("input", { type: "checkbox", id: "only-missed", checked: state.missed,
        onchange: (e) => { state.missed = e.target.checked; state.page = 0; state.redraw(); } }), " missed support only"),
    ];
  }
  const kiragKeep = (state) => (item) =>
    (!state.wrong || (item.correct && !item.correct.em)) &&
    (!state.missed || item.support_found === false);

  // ---- Rank1 ----
  function rank1Card(item) {
    const row = (d, moved) => el("tr", { class: d.fallback && d.fallback !== "none" ? "fallback" : "" },
      el("td", { class: "num" }, moved ? d.rank : d.first_stage_rank),
      el("td", {}, d.docid, d.title ? ` — ${d.title}` : "",
        d.relevance !== null && d.relevance !== undefined ? badge(`rel ${d.relevance}`, d.relevance > 0 ? "ok" : "") : null,
        moved && d.fallback && d.fallback !== "none" ? badge(`fallback: ${d.fallback}`, "warn") : null,
        moved && d.truncated ? badge("passage truncated", "warn") : null,
        moved && d.reasoning !== undefined ? el("details", {}, el("summary", {}, "reasoning"),
          el("div", { class: "passage" }, d.reasoning || "(thinking budget 0: no reasoning)")) : null),
      el("td", { class: "num" }, moved ? fmt(d.p_true) : fmt(d.first_stage_score)),
      moved ? el("td", { class: "num " + (d.move > 0 ? "up" : d.move < 0 ? "down" : "") },
        d.move === null ? "new" : d.move > 0 ? `▲${d.move}` : d.move < 0 ? `▼${-d.move}` : "=") : null);
    const first = [...item.docs].filter((d) => d.first_stage_rank !== null)
      .sort((a, b) => a.first_stage_rank - b.first_stage_rank);
    return el("section", { class: "card rank1-item", "data-id": item.qid },
      el("h3", {}, `${item.qid}: ${item.query || ""}`),
      item.fallbacks ? el("div", {}, badge(`${item.fallbacks} fallbacks`, "warn")) : null,
      el("div", { class: "cols" },
        el("div", {}, el("b", {}, "first stage"), el("table", {},
          el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "document"), el("th", { class: "num" }, "score")),
          first.map((d) => row(d, false)))),
        el("div", {}, el("b", {}, "reranked"), el("table", {},
          el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "document"),
            el("th", { class: "num" }, "P(true)"), el("th", { class: "num" }, "move")),
          item.docs.map((d) => row(d, true))))));
  }
  function rank1Filters(state) {
    return [el("label", {}, el("input", { type: "checkbox", id: "only-fallbacks", checked: state.fallbacks,
      onchange: (e) => { state.fallbacks = e.target.checked; state.page = 0; state.redraw(); } }), " with fallbacks only")];
  }
  const rank1Keep = (state) => (item) => !state.fallbacks || item.fallbacks > 0;

  // ---- Evaluation ----
  function lineChart(title, curve, runs) {
    const w = 420, h = 240, pad = 40;
    const ks = curve.ks, xs = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, ks.length - 1);
    const ys = (v) => h - pad - v * (h - 2 * pad);
    const root = svg("svg", { width: w, height: h, class: "curve", role: "img", "aria-label": title });
    root.append(svg("text", { x: w / 2, y: 14, "text-anchor": "middle" }, title));
    root.append(svg("line", { x1: pad, y1: ys(0), x2: w - pad, y2: ys(0), stroke: "#999" }));
    root.append(svg("line", { x1: pad, y1: ys(0), x2: pad, y2: ys(1), stroke: "#999" }));
    [0, 0.5, 1].forEach((v) => root.append(svg("text", { x: pad - 6, y: ys(v) + 4, "text-anchor": "end" }, v)));
    ks.forEach((k, i) => root.append(svg("text", { x: xs(i), y: h - pad + 14, "text-anchor": "middle" }, k)));
    const colors = ["#1a56db", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285"];
    runs.forEach((run, r) => {
      const values = curve.values[run];
      const points = values.map((v, i) => `${xs(i)},${ys(v)}`).join(" ");
      root.append(svg("polyline", { points, fill: "none", stroke: colors[r % 6], "stroke-width": 2 }));
      values.forEach((v, i) => root.append(svg("circle", { cx: xs(i), cy: ys(v), r: 2.5, fill: colors[r % 6] })));
      root.append(svg("text", { x: pad + 130 * r, y: h - 6, fill: colors[r % 6] }, "— " + run));
    });
    return el("div", { class: "chart" }, root);
  }

  function evalSummary(data) {
    const p = (run, metric) => data.comparisons.find((c) => c.run === run && c.metric === metric);
    return el("table", { id: "aggregate" },
      el("tr", {}, el("th", {}, "run"), data.metrics.map((m) => el("th", { class: "num" }, m)), el("th", { class: "num" }, "queries")),
      data.runs.map((run) => el("tr", {}, el("td", {}, run + (run === data.runs[0] ? " (baseline)" : "")),
        data.metrics.map((m) => {
          const c = p(run, m);
          const mark = c ? (c.t_test_p < 0.05 ? "†" : "") + (c.randomization_p < 0.05 ? "‡" : "") : "";
          return el("td", { class: "num", title: c ? `Δ ${fmt(c.difference, 4)}, t-test p ${fmt(c.t_test_p, 4)}, randomisation p ${fmt(c.randomization_p, 4)}` : "" },
            fmt(data.aggregate[run][m], 4) + mark);
        }), el("td", { class: "num" }, data.queries[run]))));
  }

  function evalView(data, root) {
    const state = { page: 0, sort: null, desc: true, filter: "" };
    const columns = [];
    data.runs.forEach((run) => data.metrics.forEach((m) => columns.push({ run, metric: m, label: `${run} ${m}` })));
    if (data.runs.length > 1) data.metrics.forEach((m) => columns.push({ diff: m, label: `Δ ${m}` }));
    const value = (row, c) => (c.diff ? row.diff[c.diff] : row.values[c.run]?.[c.metric]);
    const tableBox = el("div", {});
    const redraw = () => {
      let rows = data.per_query.filter((r) => !state.filter || r.qid.includes(state.filter) || (r.query || "").toLowerCase().includes(state.filter));
      if (state.sort !== null) {
        const c = columns[state.sort];
        rows = [...rows].sort((a, b) => ((value(a, c) ?? -1) - (value(b, c) ?? -1)) * (state.desc ? -1 : 1));
      }
      const size = 100, start = state.page * size;
      tableBox.replaceChildren(pager(rows.length, size, state, redraw), el("table", { id: "per-query" },
        el("tr", {}, el("th", {}, "query"), columns.map((c, i) => el("th", { class: "num sortable",
          onclick: () => { state.desc = state.sort === i ? !state.desc : true; state.sort = i; state.page = 0; redraw(); } }, c.label))),
        rows.slice(start, start + size).map((r) => el("tr", {}, el("td", {}, r.qid, r.query ? el("div", { class: "muted" }, r.query) : null),
          columns.map((c) => { const v = value(r, c); return el("td", { class: "num " + (c.diff ? (v > 0 ? "up" : v < 0 ? "down" : "") : "") }, fmt(v, 4)); })))));
    };
    root.append(
      el("h2", {}, "Runs"), evalSummary(data),
      data.runs.length > 1 ? el("p", { class: "muted" }, `† paired t-test, ‡ randomisation test (${data.trials} trials): p < 0.05 against ${data.runs[0]}; hover a value for Δ and p.`) : null,
      data.curves ? el("div", {}, el("h2", {}, "Curves"), Object.entries(data.curves).map(([name, curve]) => lineChart(name, curve, data.runs))) : null,
      el("h2", {}, "Per query"),
      el("div", { class: "toolbar" }, el("input", { type: "search", placeholder: "filter query id or text",
        oninput: (e) => { state.filter = e.target.value.toLowerCase(); state.page = 0; redraw(); } })),
      tableBox);
    redraw();
  }

  // A paginated, filtered list of cards.
  function listView(items, card, filters, keep, text, root) {
    const state = { page: 0, search: "", wrong: false, missed: false, fallbacks: false };
    const box = el("div", {});
    state.redraw = () => {
      const shown = items.filter(keep(state)).filter((i) => !state.search || text(i).toLowerCase().includes(state.search));
      const size = 25, start = state.page * size;
      box.replaceChildren(pager(shown.length, size, state, state.redraw),
        ...shown.slice(start, start + size).map(card), pager(shown.length, size, state, state.redraw));
    };
    root.append(el("div", { class: "toolbar" },
      el("input", { type: "search", placeholder: "search", id: "search",
        oninput: (e) => { state.search = e.target.value.toLowerCase(); state.page = 0; state.redraw(); } }),
      ...filters(state)), box);
    state.redraw();
  }

  function summary(data) {
    return el("div", { class: "summary", id: "summary" },
      Object.entries(data.summary).map(([k, v]) => el("span", { "data-key": k }, el("b", {}, v), " ", k)));
  }

  function render(data, root) {
    root.append(summary(data));
    if (data.kind === "kirag") listView(data.items, kiragCard, kiragFilters, kiragKeep,
      (i) => i.id + " " + i.question + " " + (i.answer || ""), root);
    else if (data.kind === "rank1") listView(data.items, rank1Card, rank1Filters, rank1Keep,
      (i) => i.qid + " " + (i.query || ""), root);
    else if (data.kind === "eval") evalView(data, root);
  }
  return { el, render, kiragCard, rank1Card, chainGraph, passage, fmt, badge };
})();
