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
  const rows = Array.from(tbody.rows);
  const filters = {
    text: $("f-text"), verdict: $("f-verdict"), target: $("f-target"), kind: $("f-kind"),
    pkg: $("f-package"), rule: $("f-rule"), layer: $("f-layer"), reach: $("f-reach"),
  };
  const NOT_READY = new Set(["blocked", "rework", "shim", "unknown"]);

  // -- filtering: every row stays in the DOM, only `hidden` changes
  function matches(row, f) {
    const d = row.dataset;
    if (f.text && !d.path.toLowerCase().includes(f.text)) return false;
    if (f.kind && !d.kind.split(" ").includes(f.kind)) return false;
    if (f.pkg && d.pkg !== f.pkg) return false;
    if (f.rule && !d.rules.split(" ").includes(f.rule)) return false;
    if (f.layer && d.layer !== f.layer) return false;
    if (f.reach && d.reach !== "1") return false;
    if (f.verdict) {
      const v = d["v" + f.target.charAt(0).toUpperCase() + f.target.slice(1)] || "";
      if (f.verdict === "not-ready" ? !NOT_READY.has(v) : v !== f.verdict) return false;
    }
    return true;
  }
  function applyFilters() {
    const f = {
      text: filters.text.value.trim().toLowerCase(), verdict: filters.verdict.value,
      target: filters.target.value, kind: filters.kind.value, pkg: filters.pkg.value,
      rule: filters.rule.value,
      layer: filters.layer.value, reach: filters.reach.checked,
    };
    let shown = 0;
    for (const row of rows) {
      const ok = matches(row, f);
      if (row.hidden === ok) row.hidden = !ok;
      if (ok) shown += 1;
    }
    $("f-count").value = `${shown} of ${rows.length}`;
  }
  for (const el of Object.values(filters)) {
    el.addEventListener(el.type === "search" ? "input" : "change", applyFilters);
  }
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());

  // -- sorting: keys are read once, rows are re-appended in the new order
  const datasetKey = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
  let sorted = { key: null, dir: 1 };
  function sortBy(button) {
    const key = datasetKey(button.dataset.sort);
    const numeric = button.dataset.numeric === "1";
    sorted = { key, dir: sorted.key === key ? -sorted.dir : 1 };
    const value = (row) => {
      const raw = row.dataset[key] || "";
      return numeric ? (raw === "" ? Infinity : Number(raw)) : raw.toLowerCase();
    };
    const keyed = rows.map((row) => [value(row), row.dataset.path, row]);
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) * sorted.dir);
    rows.length = 0;
    const frag = document.createDocumentFragment();
    for (const [, , row] of keyed) { rows.push(row); frag.appendChild(row); }
    tbody.appendChild(frag);
    for (const b of document.querySelectorAll("#component-table th button")) b.removeAttribute("aria-sort");
    button.setAttribute("aria-sort", sorted.dir === 1 ? "ascending" : "descending");
  }
  for (const b of document.querySelectorAll("#component-table th button")) {
    b.addEventListener("click", () => sortBy(b));
  }

  // -- details of one row, built with textContent only
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function badge(verdict) { return el("span", verdict, "badge v-" + (verdict === "n/a" ? "na" : verdict)); }
  const rowOfPath = new Map(rows.map((row) => [row.dataset.path, row]));
  function componentLink(path) {  // a link to a component's details, or its path as text
    const row = rowOfPath.get(path);
    if (!row) return document.createTextNode(path);
    const link = el("a", path, "comp");
    link.href = "#c-" + row.dataset.i;
    return link;
  }
  function evidenceLine(line) {  // a line that starts with a component's path links to it
    const li = el("li");
    const path = line.split(" · ")[0];
    const row = rowOfPath.get(path);
    if (row && path !== line) li.append(componentLink(path), line.slice(path.length));
    else li.textContent = line;
    return li;
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
      const item = el("div", null, "finding");
      const link = el("a", f.rule, "rule");
      link.href = "#rule-" + f.rule;
      link.addEventListener("click", () => $("details").close());
      item.append(link, " ", el("span", f.targets.join(", ")), " ", badge(f.verdict), " ", el("span", f.message));
      const list = el("ul", null, "evidence");
      for (const line of f.evidence) list.append(evidenceLine(line));
      if (f.more) list.append(el("li", `and ${f.more} more`, "more"));
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

  // -- graph colours follow the chosen target
  const graphTarget = $("graph-target");
  graphTarget.addEventListener("change", () => {
    const attr = "data-v-" + graphTarget.value;
    for (const node of document.querySelectorAll("#depgraph .node[" + attr + "]")) {
      for (const cls of Array.from(node.classList)) if (cls.startsWith("v-")) node.classList.remove(cls);
      node.classList.add("v-" + node.getAttribute(attr));
    }
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
