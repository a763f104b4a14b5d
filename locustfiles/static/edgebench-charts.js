// Live charts in the "Edgegap deploys" tab of Locust's web UI, drawn with uPlot from
// /edgebench/series (the board of every worker's reports): offered and accepted rate against
// the limit, outcome shares, the players' wait p50 / p95 and the queue for the limiter.
// Locust's tabs take tables only, so the charts go under the tab's table, put back when
// React redraws the tab, updated every second while it shows, and taken away on any other
// tab. Above them: where this run's records go, and its report's link once it is written
// (no reload); at the top of every tab, why a START was refused.
(function () {
  "use strict";
  const CHARTS = [
    { key: "rate", title: "Offered and accepted per second, against the limit",
      series: [["offered", "#1f77b4"], ["accepted", "#2ca02c"], ["limit", "#d62728"]] },
    { key: "shares", title: "Outcome shares of the requests sent (last 10 s)",
      series: [["share_202", "#2ca02c"], ["share_422", "#ff7f0e"], ["share_429", "#d62728"],
               ["share_error", "#7f7f7f"]] },
    { key: "wait", title: "Players' wait, match due to 202, p50 / p95 (s, last 10 s)",
      series: [["wait_p50", "#1f77b4"], ["wait_p95", "#9467bd"]] },
    { key: "queue", title: "Matches waiting for the client's limiter",
      series: [["queue", "#8c564b"]] },
  ];
  const charts = {};
  window.edgebenchCharts = charts;

  function ourTabShows() {
    const selected = document.querySelector('[role="tab"][aria-selected="true"]');
    return selected !== null && selected.textContent.includes("Edgegap deploys");
  }

  function ourTable() {
    if (!ourTabShows()) return undefined;
    return [...document.querySelectorAll("table")].find((table) =>
      table.textContent.includes("Offered /s"));
  }

  function takeAway() {
    const box = document.getElementById("edgebench-charts");
    if (box) box.remove();
    for (const key of Object.keys(charts)) delete charts[key];
  }

  function notice(text) {
    let banner = document.getElementById("edgebench-notice");
    if (!text) {
      if (banner) banner.remove();
      return;
    }
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "edgebench-notice";
      banner.setAttribute("role", "alert");
      banner.style.cssText = "background:#ffebee;color:#b71c1c;padding:8px 16px;font-weight:600";
      document.body.prepend(banner);
    }
    banner.textContent = text;
  }

  function about(box, body) {
    let line = document.getElementById("edgebench-about");
    if (!line) {
      line = document.createElement("div");
      line.id = "edgebench-about";
      line.style.cssText = "flex-basis:100%";
      box.prepend(line);
    }
    const folder = body.folder ? `This run's records: ${body.folder}` : "";
    const link = body.report
      ? ` <a href="${body.report.replace(/^\//, "")}" target="_blank">Report of the last run</a>`
      : "";
    const html = folder.replace(/&/g, "&amp;").replace(/</g, "&lt;") + link;
    if (line.innerHTML !== html) line.innerHTML = html;
  }

  function panel(table) {
    let box = document.getElementById("edgebench-charts");
    if (box && box.isConnected && box.previousElementSibling === table.parentElement) return box;
    if (box) box.remove();
    for (const key of Object.keys(charts)) delete charts[key];
    box = document.createElement("div");
    box.id = "edgebench-charts";
    box.style.cssText = "display:flex;flex-wrap:wrap;gap:12px;margin-top:16px";
    table.parentElement.after(box);
    return box;
  }

  function columns(body, chart) {
    const points = body.points;
    const data = [points.map((p) => p.t)];
    for (const [name] of chart.series) {
      data.push(points.map((p) => (name === "limit" ? body.limit : p[name])));
    }
    return data;
  }

  function label(value) {
    return value == null ? "" : String(+value.toPrecision(3));  // 0.0045, not "0.005" twice
  }

  function draw(box, body) {
    const width = Math.max(320, Math.floor((box.clientWidth || 960) / 2) - 12);
    for (const chart of CHARTS) {
      const data = columns(body, chart);
      if (charts[chart.key]) {
        charts[chart.key].setData(data);
        continue;
      }
      const holder = document.createElement("div");
      holder.dataset.chart = chart.key;
      box.appendChild(holder);
      charts[chart.key] = new uPlot({
        title: chart.title, width: width, height: 220,
        series: [{}].concat(chart.series.map(([name, stroke]) =>
          ({ label: name, stroke: stroke, width: 2, spanGaps: true }))),
        axes: [{}, { size: 60, values: (u, ticks) => ticks.map(label) }],
      }, data, holder);
    }
  }

  async function tick() {
    try {
      const answer = await fetch("edgebench/series", { cache: "no-store" });
      if (!answer.ok) return;
      const body = await answer.json();
      notice(body.notice);
      const table = ourTable();
      if (!table) {  // another tab shows: the charts are its tab's only
        takeAway();
        return;
      }
      const box = panel(table);
      about(box, body);
      draw(box, body);
    } catch (error) {
      console.warn("edgebench charts:", error);
    }
  }

  setInterval(tick, 1000);
})();
