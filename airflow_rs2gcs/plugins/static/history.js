// The tenant's sync history: the last runs in a table and a chart of rows and duration.

import { api, errorAlert, query, tenantPath } from "./api.js";
import { clear, h, svg } from "./dom.js";
import { badge, fmtBytes, fmtDuration, fmtNumber, numberFmt, timeEl } from "./format.js";
import { AIRFLOW, HISTORY_LIMIT } from "./state.js";

export async function loadHistory(ctx) {
  const section = h(
    "section",
    { class: "card", "aria-labelledby": "history-title" },
    h("div", { class: "section-title" }, h("h3", { id: "history-title" }, "Sync history"), h("span", { class: "muted small" }, `last ${HISTORY_LIMIT} runs`)),
  );
  if (!ctx.tenant.entry) {
    section.append(h("p", { class: "muted" }, "No sync yet."));
    clear(ctx.history).append(section);
    return;
  }
  let data;
  try {
    data = await api(`${tenantPath(ctx.tenantId, "runs")}?${query({ limit: HISTORY_LIMIT })}`);
  } catch (err) {
    if (!ctx.alive()) return;
    section.append(errorAlert(err, "view"));
    clear(ctx.history).append(section);
    return;
  }
  if (!ctx.alive()) return;
  const runs = data.runs || [];
  if (!runs.length) {
    section.append(h("p", { class: "muted" }, "No sync run yet."));
  } else {
    section.append(
      historyChart(runs),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h("caption", { class: "visually-hidden" }, "Sync runs, newest first"),
          h(
            "thead",
            {},
            h("tr", {}, ["State", "Start", "Rows", "Bytes", "Duration", "Tables"].map((t) => h("th", { scope: "col", class: t === "State" || t === "Start" ? null : "num" }, t))),
          ),
          h(
            "tbody",
            {},
            runs.map((r) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  {},
                  h(
                    "a",
                    {
                      href: `${AIRFLOW}dags/${encodeURIComponent(ctx.tenant.sync_dag_id || `rs2gcs_sync__${ctx.tenantId}`)}/runs/${encodeURIComponent(r.run_id)}`,
                      target: "_top", "data-outside": "",
                      title: r.run_id,
                    },
                    badge(r.state),
                  ),
                ),
                h("td", { class: "nowrap" }, timeEl(r.start, false)),
                h("td", { class: "num" }, fmtNumber(r.rows)),
                h("td", { class: "num" }, fmtBytes(r.bytes)),
                h("td", { class: "num" }, fmtDuration(r.duration_seconds)),
                h("td", { class: "num" }, fmtNumber(r.tables)),
              ),
            ),
          ),
        ),
      ),
    );
  }
  clear(ctx.history).append(section);
}

// Rows as bars, duration as a line, oldest run on the left; no chart library.
export function historyChart(runsNewestFirst) {
  const runs = [...runsNewestFirst].reverse();
  const W = 600;
  const H = 180;
  const pad = { l: 52, r: 64, t: 12, b: 22 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const maxRows = Math.max(1, ...runs.map((r) => r.rows || 0));
  const maxDur = Math.max(1, ...runs.map((r) => r.duration_seconds || 0));
  const step = iw / runs.length;
  const barW = Math.max(2, Math.min(24, step * 0.7));
  const x = (i) => pad.l + step * i + step / 2;
  const yRows = (v) => pad.t + ih - (ih * v) / maxRows;
  const yDur = (v) => pad.t + ih - (ih * v) / maxDur;
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const label = `Rows (bars) and duration (line) of the last ${runs.length} sync runs; largest ${numberFmt.format(maxRows)} rows, longest ${fmtDuration(maxDur)}`;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, preserveAspectRatio: "xMidYMid meet" });
  chart.append(svg("title", {}, label));
  for (const f of [0.5, 1]) chart.append(svg("line", { class: "grid", x1: pad.l, x2: W - pad.r, y1: pad.t + ih * (1 - f), y2: pad.t + ih * (1 - f) }));
  chart.append(svg("line", { class: "axis", x1: pad.l, x2: W - pad.r, y1: pad.t + ih, y2: pad.t + ih }));
  chart.append(svg("text", { x: pad.l - 6, y: pad.t + 4, "text-anchor": "end" }, compact.format(maxRows)));
  chart.append(svg("text", { x: pad.l - 6, y: pad.t + ih, "text-anchor": "end" }, "0"));
  chart.append(svg("text", { x: W - pad.r + 6, y: pad.t + 4 }, fmtDuration(maxDur)));
  chart.append(svg("text", { x: W - pad.r + 6, y: pad.t + ih }, "0 s"));
  runs.forEach((r, i) => {
    const v = r.rows || 0;
    const bar = svg("rect", {
      class: r.state === "failed" ? "bar bar-failed" : "bar",
      x: x(i) - barW / 2,
      y: yRows(v),
      width: barW,
      height: Math.max(r.state === "failed" ? 2 : 0, pad.t + ih - yRows(v)),
      rx: 1.5,
    });
    bar.append(svg("title", {}, `${r.start || r.run_id}: ${r.state}, ${fmtNumber(r.rows)} rows, ${fmtDuration(r.duration_seconds)}`));
    chart.append(bar);
  });
  const pts = runs.map((r, i) => (r.duration_seconds === null || r.duration_seconds === undefined ? null : [x(i), yDur(r.duration_seconds)])).filter(Boolean);
  if (pts.length > 1) chart.append(svg("polyline", { class: "line", points: pts.map((p) => p.join(",")).join(" ") }));
  for (const [px, py] of pts) chart.append(svg("circle", { class: "dot", cx: px, cy: py, r: 2.5 }));
  if (runs.length) {
    chart.append(svg("text", { x: pad.l, y: H - 6 }, "older"));
    chart.append(svg("text", { x: W - pad.r, y: H - 6, "text-anchor": "end" }, "newest"));
  }
  return h(
    "figure",
    { class: "stack", style: null },
    chart,
    h(
      "figcaption",
      { class: "legend" },
      h("span", {}, h("span", { class: "swatch swatch-rows" }), "Rows"),
      h("span", {}, h("span", { class: "swatch swatch-dur" }), "Duration"),
    ),
  );
}
