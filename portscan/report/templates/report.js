(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const table = $("component-table");
  const CHUNK = Number(table.dataset.chunkRows);
  const chunks = new Map();  // chunk number -> its rows' details, inflated on first use
  async function details(index) {
    const n = Math.floor(index / CHUNK);
    if (!chunks.has(n)) {
      const text = atob($("portscan-data-" + n).textContent.trim());
      const bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      chunks.set(n, await new Response(stream).json());
      table.dataset.inflated = String(chunks.size);  // how many chunks are inflated
    }
    return chunks.get(n)[index % CHUNK];
  }
  const tbody = table.tBodies[0];
  const ROWS = JSON.parse($("portscan-rows").textContent);  // every row, in page order
  const TARGETS = table.dataset.targets.split(" ");
  const SHOWN = Number(table.dataset.shownRows);
  const filters = {
    text: $("f-text"), verdict: $("f-verdict"), target: $("f-target"), kind: $("f-kind"),
    pkg: $("f-package"), rule: $("f-rule"), layer: $("f-layer"), reach: $("f-reach"),
  };
  const NOT_READY = new Set(["blocked", "rework", "shim", "unknown"]);
  let order = ROWS.slice();  // the rows in the current sort order
  let matching = order;  // those the filters let through
  let limit = SHOWN;  // how many of them are in the table

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function badge(verdict) { return el("span", verdict, "badge v-" + (verdict === "n/a" ? "na" : verdict)); }

  // -- one table row, built with textContent only
  function rowElement(r) {
    const tr = document.createElement("tr");
    tr.id = "c-" + r.i;
    const d = tr.dataset;
    d.i = r.i; d.path = r.path; d.kind = r.kind + (r.rt ? " runtime" : ""); d.pkg = r.pkg;
    d.layer = r.layer ?? ""; d.reach = r.reach; d.rules = r.rules.join(" ");
    const open = el("button", r.path, "open");
    open.type = "button";
    open.title = "show findings";
    const cell = el("td");
    cell.append(open);
    const kind = el("td", r.kind);
    if (r.rt) kind.append(" ", el("small", `(${r.rt})`));
    tr.append(cell, kind, el("td", r.pkg), el("td", r.layer ?? ""), el("td", r.reach ? "yes" : ""));
    TARGETS.forEach((t, k) => {
      tr.setAttribute("data-v-" + t, r.v[k]);
      tr.setAttribute("data-r-" + t, r.r[k]);
      const td = el("td");
      if (r.v[k]) {
        td.append(badge(r.v[k]));
        if (r.s[k] !== null && r.s[k] !== undefined) td.append(" ", el("small", r.s[k]));
      }
      tr.append(td);
    });
    return tr;
  }
  function draw() {
    const frag = document.createDocumentFragment();
    for (const r of matching.slice(0, limit)) frag.append(rowElement(r));
    tbody.replaceChildren(frag);
    const shown = Math.min(limit, matching.length);
    $("f-count").value = `${matching.length} of ${ROWS.length}` +
      (shown < matching.length ? ` (the first ${shown} shown)` : "");
    $("more-rows").hidden = shown >= matching.length;
  }

  // -- filtering: over the array; only the first rows that match are drawn
  function matches(r, f) {
    if (f.text && !r.path.toLowerCase().includes(f.text)) return false;
    if (f.kind && !(r.kind === f.kind || (f.kind === "runtime" && r.rt))) return false;
    if (f.pkg && r.pkg !== f.pkg) return false;
    if (f.rule && !r.rules.includes(f.rule)) return false;
    if (f.layer && String(r.layer ?? "") !== f.layer) return false;
    if (f.reach && !r.reach) return false;
    if (f.verdict) {
      const v = r.v[f.target] || "";
      if (f.verdict === "not-ready" ? !NOT_READY.has(v) : v !== f.verdict) return false;
    }
    return true;
  }
  function applyFilters() {
    const f = {
      text: filters.text.value.trim().toLowerCase(), verdict: filters.verdict.value,
      target: TARGETS.indexOf(filters.target.value), kind: filters.kind.value,
      pkg: filters.pkg.value, rule: filters.rule.value, layer: filters.layer.value,
      reach: filters.reach.checked,
    };
    matching = order.filter((r) => matches(r, f));
    limit = SHOWN;
    draw();
  }
  for (const input of Object.values(filters)) {
    input.addEventListener(input.type === "search" ? "input" : "change", applyFilters);
  }
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("f-more").addEventListener("click", () => { limit += SHOWN * 4; draw(); });

  // -- sorting: the array, then the filters again; ties go by path
  let sorted = { key: null, dir: 1 };
  function sortBy(button) {
    const key = button.dataset.sort;
    sorted = { key, dir: sorted.key === key ? -sorted.dir : 1 };
    const k = key.startsWith("r-") ? TARGETS.indexOf(key.slice(2)) : -1;
    const value = k >= 0 ? (r) => r.r[k]
      : key === "layer" ? (r) => (r.layer ?? Infinity)
      : key === "reach" ? (r) => r.reach
      : (r) => String(r[key] ?? "").toLowerCase();
    const keyed = order.map((r) => [value(r), r.path, r]);
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) * sorted.dir);
    order = keyed.map((x) => x[2]);
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    button.closest("th").setAttribute("aria-sort", sorted.dir === 1 ? "ascending" : "descending");
    applyFilters();
  }
  for (const b of document.querySelectorAll("#component-table th button")) {
    b.addEventListener("click", () => sortBy(b));
  }

  // -- details of one row, built with textContent only
  const indexOfPath = new Map(ROWS.filter((r) => r.kind !== "package").map((r) => [r.path, r.i]));
  const pathOfRow = new Map(ROWS.map((r) => [r.i, r.path]));
  function componentLink(path) {  // a link to a component's details, or its path as text
    const index = indexOfPath.get(path);
    if (index === undefined) return document.createTextNode(path);
    const link = el("a", path, "comp");
    link.href = "#c-" + index;
    return link;
  }
  function evidenceLine(entry) {  // a line that starts with a component's path links to it
    const li = el("li");
    const [line, chain] = Array.isArray(entry) ? entry : [entry, null];
    const path = line.split(" · ")[0];
    if (indexOfPath.has(path) && path !== line) li.append(componentLink(path), line.slice(path.length));
    else li.textContent = line;
    if (chain) li.append(chainLine(chain));
    return li;
  }
  function chainLine(chain) {  // program → function (library) → … → libc function
    const line = el("span", null, "chain");
    line.append(el("span", "via", "chain-via"));
    chain.forEach(([text, row], i) => {  // row: the number of the component the step names
      if (i) line.append(el("span", " → ", "chain-arrow"));
      let step;
      if (row === undefined) step = el("span", text, "step");
      else {
        step = el("a", text, "step comp");
        step.href = "#c-" + row;
        step.title = pathOfRow.get(row);
      }
      line.append(step);
    });
    return line;
  }
  async function showDetails(index) {
    const c = await details(index);
    $("details-title").textContent = c.path;
    const body = $("details-body");
    body.replaceChildren();
    const facts = el("p");
    facts.append(el("strong", c.kind), ` · package ${c.package || "-"} · layer ${c.layer ?? "-"}`,
      c.reachable ? " · reachable from the entrypoint" : " · not reachable from the entrypoint");
    if (c.runtime) facts.append(` · runtime ${c.runtime}`);
    body.append(facts);
    const verdicts = el("p");
    for (const [t, v] of Object.entries(c.verdicts)) { verdicts.append(t + " ", badge(v), "  "); }
    body.append(verdicts);
    if (c.binary) {
      const b = c.binary;
      body.append(el("p", `ELF: ${b.linkage}, libc ${b.libc}` + (b.interpreter ? `, loader ${b.interpreter}` : "") +
        (b.needed.length ? `, needs ${b.needed.join(", ")}` : "")));
    }
    if (c.plan) body.append(el("p", `Plan: ${c.plan.path} (effort ${c.plan.effort}): ${c.plan.summary}`));
    if (c.owns) {
      const owns = el("p", `${c.files} files; judged components: `);
      c.owns.forEach((path, i) => owns.append(i ? ", " : "", componentLink(path)));
      if (!c.owns.length) owns.append("none");
      body.append(owns);
    }
    const inherited = new Map();  // the same components often flow into every target
    for (const [t, ids] of Object.entries(c.inherited)) {
      const from = ids.map((i) => i.replace(/^file:/, "")).join(", ");
      inherited.set(from, [...(inherited.get(from) || []), t]);
    }
    for (const [from, targets] of inherited) {
      body.append(el("p", `${targets.join(", ")}: verdict inherited from ${from}`));
    }
    body.append(el("h4", c.findings.length ? "Findings that stand between it and ready" : "No open findings"));
    for (const f of c.findings) {
      const item = el("div", null, f.waived ? "finding waived" : "finding");
      const link = el("a", f.rule, "rule");
      link.href = "#rule-" + f.rule;
      link.addEventListener("click", () => $("details").close());
      item.append(link, " ", el("span", f.targets.join(", ")), " ", badge(f.verdict), " ", el("span", f.message));
      const list = el("ul", null, "evidence");
      for (const n of f.evidence) list.append(evidenceLine(c.lines[n]));  // lines by index
      if (f.more) list.append(el("li", `and ${f.more} more`, "more"));
      if (f.waived) item.append(el("p", "waived: " + f.waived, "waived-reason"));
      item.append(list);
      body.append(item);
    }
    const ready = Object.entries(c.ready).filter(([, n]) => n > 0);
    if (ready.length) body.append(el("p", "Ready findings: " + ready.map(([t, n]) => `${t} ${n}`).join(", ")));
    const dialog = $("details");
    if (!dialog.open) dialog.showModal();
    dialog.scrollTop = 0;
  }
  // -- every link to #c-N opens that component's details
  function openLink(href) {
    const m = /^#c-(\d+)$/.exec(href || "");
    if (!m) return false;
    showDetails(Number(m[1])).catch((err) => console.error(err));
    return true;
  }
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[href]");
    if (!link) return;
    const href = link.getAttribute("href");
    if (openLink(href)) {
      ev.preventDefault();
      history.replaceState(null, "", href);
      return;
    }
    if (link.classList.contains("show-rule")) {
      filters.rule.value = link.dataset.rule;
      applyFilters();
    }
  });
  window.addEventListener("hashchange", () => openLink(location.hash));
  tbody.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.open");
    if (button) showDetails(Number(button.closest("tr").dataset.i)).catch((err) => console.error(err));
  });

  // -- the graph's and the map's colours follow the chosen target
  function recolour(select, selector) {
    select.addEventListener("change", () => {
      const attr = "data-v-" + select.value;
      for (const node of document.querySelectorAll(selector + "[" + attr + "]")) {
        for (const cls of Array.from(node.classList)) if (cls.startsWith("v-")) node.classList.remove(cls);
        node.classList.add("v-" + node.getAttribute(attr));
      }
    });
  }
  recolour($("graph-target"), "#depgraph .node");
  recolour($("map-target"), "#treemap .cell");
  // -- a search highlights the boxes whose path holds the text, and dims the others
  $("graph-search").addEventListener("input", () => {
    const text = $("graph-search").value.trim().toLowerCase();
    let found = 0;
    for (const node of document.querySelectorAll("#depgraph .node")) {
      const hit = text !== "" && node.dataset.node.toLowerCase().includes(text);
      node.classList.toggle("match", hit);
      node.classList.toggle("dim", text !== "" && !hit);
      if (hit) found += 1;
    }
    $("graph-found").value = text ? `${found} found` : "";
  });
  // -- hovering a box highlights its edges
  const graph = $("depgraph");
  let lit = [];
  graph.addEventListener("mouseover", (ev) => {
    const node = ev.target.closest(".node");
    for (const edge of lit) edge.classList.remove("hl");
    lit = [];
    if (!node) return;
    for (const edge of graph.querySelectorAll(".edge")) {
      if (edge.dataset.a === node.dataset.node || edge.dataset.b === node.dataset.node) {
        edge.classList.add("hl");
        lit.push(edge);
      }
    }
  });
  applyFilters();
  openLink(location.hash);
})();
