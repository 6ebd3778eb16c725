/// The page's inline stylesheet and optional script (kept here so the renderer stays
/// readable). Nothing is fetched: no fonts, no images, no libraries.
enum HTMLAssets {
    static let stylesheet = """
    :root { --ink: #222; --muted: #666; --line: #ddd; --accent: #0072B2; --warn: #A04000; --card: #f6f8fa; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
    header, main, footer, nav { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
    header { padding-top: 24px; }
    h1 { font-size: 1.7rem; margin: 0 0 4px; }
    h2 { font-size: 1.3rem; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
    h3 { font-size: 1rem; margin: 16px 0 4px; }
    .meta { color: var(--muted); margin: 0 0 8px; }
    code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.92em; }
    pre { white-space: pre-wrap; word-break: break-word; margin: 0; font: 0.88em/1.4 ui-monospace, Menlo, Consolas, monospace; }
    a { color: var(--accent); }
    .warning { border-left: 4px solid var(--warn); background: #fff4ec; padding: 8px 12px; }
    nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 8px 0; margin: 0; border-bottom: 1px solid var(--line); }
    nav a { text-decoration: none; }
    .card { background: var(--card); border: 1px solid var(--line); border-left: 6px solid var(--accent); border-radius: 6px; padding: 4px 20px 12px; margin-top: 20px; }
    .card h2 { border: 0; margin-top: 12px; }
    .pick { margin: 0; }
    .pick-name { font-size: 1.6rem; font-weight: 700; }
    .pick-kind { color: var(--muted); margin-left: 8px; }
    .facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 8px 0; }
    .facts div { min-width: 120px; }
    .facts dt { color: var(--muted); font-size: 0.85rem; }
    .facts dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
    .scroll { overflow-x: auto; }
    table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
    caption { text-align: left; color: var(--muted); padding: 4px 0; caption-side: top; }
    th, td { border-bottom: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top; }
    thead th { border-bottom: 2px solid var(--ink); font-size: 0.85rem; }
    td.num { text-align: right; white-space: nowrap; }
    .muted, .ci { color: var(--muted); }
    table.tally { font-size: 0.9rem; }
    table.tally th, table.tally td { padding: 6px 8px; }
    table.tally tbody th, table.tally td { white-space: nowrap; }
    .badges { margin-top: 2px; }
    .badges span { margin: 0 4px 0 0; }
    table.tally tr.recommended { background: #eaf3fa; }
    table.tally tr.recommended th { border-left: 4px solid var(--accent); }
    table.tally tr.ruled-out th, table.tally tr.ruled-out td { color: #555; }
    .why { font-weight: normal; font-size: 0.8rem; color: var(--warn); white-space: normal; max-width: 260px; }
    .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
    .badge { font-size: 0.72rem; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em; border: 1.5px solid var(--accent); color: var(--accent); border-radius: 3px; padding: 0 4px; margin-left: 4px; }
    .tag { font-size: 0.72rem; border: 1px solid #999; color: #444; border-radius: 3px; padding: 0 4px; margin-left: 4px; }
    .acc { display: block; }
    .bar { position: relative; display: block; height: 6px; margin-top: 3px; background: #eee; border-radius: 3px; min-width: 120px; }
    .bar .ci-band { position: absolute; top: 0; height: 6px; background: #9cc3e0; border-radius: 3px; }
    .bar .point { position: absolute; top: -2px; width: 3px; height: 10px; margin-left: -1px; background: var(--ink); }
    .legend-note { color: var(--muted); font-size: 0.88rem; }
    figure { margin: 8px 0; }
    svg.chart { width: 100%; max-width: 900px; height: auto; display: block; }
    figcaption { color: var(--muted); max-width: 900px; margin-top: 4px; }
    details.data { margin: 6px 0 0; }
    details.data summary, .examples summary { cursor: pointer; }
    details.data table { font-size: 0.88rem; margin-top: 4px; }
    .sensitivity-note, .paired { margin: 8px 0; }
    .drill > input[type=radio] { position: absolute; opacity: 0; width: 1px; height: 1px; }
    .drill > label { display: inline-block; border: 1.5px solid #888; border-radius: 16px; padding: 2px 12px; margin: 0 6px 8px 0; cursor: pointer; user-select: none; }
    .drill > input[type=radio]:checked + label { background: var(--ink); color: #fff; border-color: var(--ink); }
    .drill > input[type=radio]:focus-visible + label { outline: 3px solid var(--accent); outline-offset: 2px; }
    #filter-disagree:checked ~ .examples > li:not(.disagree),
    #filter-error:checked ~ .examples > li:not(.error),
    #filter-unparsed:checked ~ .examples > li:not(.unparsed),
    .examples > li.search-hidden { display: none; }
    .search { margin: 0 0 8px; }
    .search input { font: inherit; padding: 2px 6px; min-width: 260px; }
    ol.examples { list-style: none; padding: 0; margin: 0; }
    .examples > li { border-bottom: 1px solid var(--line); padding: 4px 0; }
    .examples summary { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; }
    .ex-id { font-family: ui-monospace, Menlo, Consolas, monospace; color: var(--muted); font-size: 0.85rem; }
    .ex-input { flex: 1 1 400px; }
    .ex-score { font-variant-numeric: tabular-nums; color: var(--muted); font-size: 0.9rem; }
    .examples li.error .ex-score { color: var(--warn); font-weight: 600; }
    .ex-body { padding: 6px 0 8px 18px; }
    .ex-body p { margin: 6px 0 2px; }
    table.answers td pre { max-height: 12em; overflow: auto; }
    .ok { color: #006b4f; font-weight: 600; }
    .bad { color: var(--warn); font-weight: 600; }
    footer { color: var(--muted); font-size: 0.85rem; margin-top: 40px; padding-bottom: 32px; border-top: 1px solid var(--line); }
    @media print {
      body { font-size: 10pt; }
      header, main, footer { max-width: none; padding: 0; }
      nav, .search, .drill > label, .drill > input { display: none !important; }
      .card { border-left-width: 4px; background: none; }
      section, figure, tr { break-inside: avoid; }
      h2 { break-after: avoid; }
      svg.chart { max-width: 100%; }
      table.tally tr.recommended { background: none; }
      a { color: inherit; text-decoration: none; }
      details.data > summary::after { content: " (open the HTML file to expand)"; }
      .bar { border: 1px solid #999; }
    }
    """

    /// Optional: a search box over the examples and a live count. The page works fully
    /// without it (filters are CSS-only radio buttons).
    static let script = """
    (function () {
      var search = document.getElementById("example-search");
      if (!search) { return; }
      var box = search.closest(".search");
      var count = document.getElementById("example-count");
      var items = Array.prototype.slice.call(document.querySelectorAll(".examples > li"));
      var radios = Array.prototype.slice.call(document.querySelectorAll("input[name=example-filter]"));
      box.hidden = false;
      function update() {
        var query = search.value.trim().toLowerCase();
        var checked = radios.filter(function (r) { return r.checked; })[0];
        var filter = checked ? checked.value : "all";
        var shown = 0;
        items.forEach(function (li) {
          var match = !query || li.textContent.toLowerCase().indexOf(query) !== -1;
          li.classList.toggle("search-hidden", !match);
          if (match && (filter === "all" || li.classList.contains(filter))) { shown += 1; }
        });
        count.textContent = shown + " of " + items.length + " shown";
      }
      search.addEventListener("input", update);
      radios.forEach(function (r) { r.addEventListener("change", update); });
      update();
    })();
    """
}
