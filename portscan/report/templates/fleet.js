(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const table = $("images");
  const tbody = table.tBodies[0];
  let rows = Array.from(tbody.rows);

  // -- search: every word must appear in the row's text
  function applySearch() {
    const words = $("f-text").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows) {
      const text = row.textContent.toLowerCase();
      const ok = words.every((w) => text.includes(w));
      row.hidden = !ok;
      if (ok) shown += 1;
    }
    $("f-count").value = `${shown} of ${rows.length}`;
  }
  $("f-text").addEventListener("input", applySearch);
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());

  // -- sorting: by a data attribute, ties by name; clicking again reverses
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
    const keyed = rows.map((row) => [value(row), row.dataset.name, row]);
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) * sorted.dir);
    rows = keyed.map((k) => k[2]);
    tbody.append(...rows);
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    button.closest("th").setAttribute("aria-sort", sorted.dir === 1 ? "ascending" : "descending");
  }
  for (const b of table.querySelectorAll("th button")) b.addEventListener("click", () => sortBy(b));
})();
