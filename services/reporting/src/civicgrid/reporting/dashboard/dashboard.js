// civicgrid dashboard: no libraries, nothing from the internet. Polls the statistics API.
"use strict";

const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 5000);
const SVG = "http://www.w3.org/2000/svg";
const TARGET = 0.9;
const state = { mode: "headline", rows: new Map(), selected: null, map: null };

const HEADLINE_BANDS = [
  { min: 0.9, colour: "#3fb27f", label: "≥ 90% 达标 met" },
  { min: 0.8, colour: "#e3c04d", label: "80–90%" },
  { min: 0.7, colour: "#e8853a", label: "70–80%" },
  { min: -1, colour: "#d9534f", label: "< 70%" },
];
const OVERDUE_BANDS = [
  { min: 6, colour: "#d9534f", label: "≥ 6" },
  { min: 3, colour: "#e8853a", label: "3–5" },
  { min: 1, colour: "#e3c04d", label: "1–2" },
  { min: 0, colour: "#3fb27f", label: "0 无超期 none" },
];
const NO_DATA = "#51627a";

function ratio(figure) {
  return figure && figure.denominator ? figure.numerator / figure.denominator : null;
}
function percent(figure) {
  const value = ratio(figure);
  return value === null ? "–" : `${(value * 100).toFixed(1)}%`;
}
function fraction(figure) {
  return figure && figure.denominator ? ` (${figure.numerator}/${figure.denominator})` : "";
}
function colourFor(row) {
  if (!row) return NO_DATA;
  if (state.mode === "overdue") {
    return OVERDUE_BANDS.find((band) => row.overdue >= band.min).colour;
  }
  const value = ratio(row.headline);
  return value === null ? NO_DATA : HEADLINE_BANDS.find((band) => value >= band.min).colour;
}
function el(name, attributes = {}, text = null, namespace = null) {
  const node = namespace ? document.createElementNS(namespace, name) : document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}
async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function drawLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  const bands = state.mode === "overdue" ? OVERDUE_BANDS : HEADLINE_BANDS;
  for (const band of [...bands, { colour: NO_DATA, label: "无数据 no data" }]) {
    const item = el("span", { class: "legend-item" });
    item.append(el("span", { class: "swatch", style: `background:${band.colour}` }), band.label);
    legend.append(item);
  }
}

async function drawMap() {
  state.map = await getJSON("/api/v1/map");
  const svg = document.getElementById("map");
  svg.setAttribute("viewBox", state.map.viewBox);
  for (const community of state.map.communities) {
    const path = el("path", { d: community.path, "data-community": community.id }, null, SVG);
    path.append(el("title", {}, community.name, SVG));
    path.addEventListener("click", () => select(community.id));
    svg.append(path);
  }
  for (const community of state.map.communities) {
    svg.append(el("text", { x: community.x, y: community.y }, community.name.replace("社区", ""), SVG));
  }
}

function paintMap() {
  for (const path of document.querySelectorAll("#map path")) {
    const id = path.dataset.community;
    path.setAttribute("fill", colourFor(state.rows.get(id)));
    path.classList.toggle("selected", id === state.selected);
  }
  drawLegend();
}

function drawTable(rows) {
  const body = document.querySelector("#community-table tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr", { "data-community": row.key });
    const local = ratio(row.headline);
    const cells = [
      ["name", `${row.name ?? row.key}`],
      ["reported", String(row.reported)],
      ["open", String(row.open)],
      ["overdue", String(row.overdue)],
      ["headline", percent(row.headline) + fraction(row.headline)],
      ["accept_on_time", percent(row.accept_on_time)],
      ["resolve_on_time", percent(row.resolve_on_time)],
      ["satisfied", percent(row.satisfied)],
      ["escalations", String(row.escalations)],
    ];
    for (const [figure, text] of cells) {
      const td = el("td", { "data-figure": figure }, text);
      if (figure === "headline" && local !== null) td.classList.add(local >= TARGET ? "met" : "below");
      tr.append(td);
    }
    tr.addEventListener("click", () => select(row.key));
    tr.classList.toggle("selected", row.key === state.selected);
    body.append(tr);
  }
}

function drawDaily(rows) {
  const svg = document.getElementById("daily");
  svg.replaceChildren();
  const width = 1000, height = 200, pad = 30;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (!rows.length) {
    svg.append(el("text", { x: 20, y: 100 }, "暂无数据 No incidents yet", SVG));
    return;
  }
  const max = Math.max(1, ...rows.map((row) => row.reported));
  const step = Math.min(60, (width - 2 * pad) / rows.length);
  rows.forEach((row, index) => {
    const x = pad + index * step;
    const reportedHeight = ((height - 2 * pad) * row.reported) / max;
    const resolvedHeight = ((height - 2 * pad) * row.resolved) / max;
    const bar = el("rect", { x, y: height - pad - reportedHeight, width: Math.max(1, step * 0.45),
      height: reportedHeight, fill: "#2f6db5", "data-day": row.key, "data-reported": row.reported }, null, SVG);
    bar.append(el("title", {}, `${row.key} 受理 reported ${row.reported}`, SVG));
    svg.append(bar);
    svg.append(el("rect", { x: x + step * 0.45, y: height - pad - resolvedHeight,
      width: Math.max(1, step * 0.45), height: resolvedHeight, fill: "#3fb27f" }, null, SVG));
    if (rows.length <= 31 || index % Math.ceil(rows.length / 31) === 0) {
      svg.append(el("text", { x, y: height - 8 }, row.key.slice(5), SVG));
    }
  });
  svg.append(el("text", { x: pad, y: 14 }, `■ 受理 reported (max ${max})   ■ 办结 resolved`, SVG));
}

async function select(communityId) {
  state.selected = communityId;
  paintMap();
  document.querySelectorAll("#community-table tbody tr").forEach((tr) =>
    tr.classList.toggle("selected", tr.dataset.community === communityId));
  const [figures, shapes] = await Promise.all([
    getJSON(`/api/v1/stats/communities/${encodeURIComponent(communityId)}`),
    getJSON(`/api/v1/map/communities/${encodeURIComponent(communityId)}`),
  ]);
  const detail = document.getElementById("detail");
  detail.replaceChildren();
  const community = figures.community;
  detail.append(el("h2", { "data-community": communityId }, `${community.name ?? communityId} · ${communityId}`));
  const facts = el("dl");
  const list = [
    ["受理 Reported", community.reported ?? 0],
    ["在办 Open", community.open ?? 0],
    ["超期 Overdue", community.overdue ?? 0],
    ["属地办结率 Resolved locally", percent(community.headline) + fraction(community.headline)],
    ["及时签收率 Accepted on time", percent(community.accept_on_time)],
    ["按时办结率 Resolved on time", percent(community.resolve_on_time)],
    ["一次办结率 First-time resolved", percent(community.first_time_resolved)],
    ["退单率 Returns", percent(community.returned)],
    ["满意率 Satisfied", percent(community.satisfied)],
  ];
  for (const [label, value] of list) facts.append(el("dt", {}, label), el("dd", {}, String(value)));
  detail.append(facts);
  const byGrid = new Map(figures.grids.map((grid) => [grid.key, grid]));
  const svg = el("svg", { viewBox: shapes.viewBox, id: "grid-map" }, null, SVG);
  for (const grid of shapes.grids) {
    const row = byGrid.get(grid.id);
    const path = el("path", { d: grid.path, "data-grid": grid.id }, null, SVG);
    path.style.fill = row ? colourFor(row) : NO_DATA;
    path.append(el("title", {}, `${grid.name}: ${row ? row.reported : 0}`, SVG));
    svg.append(path);
  }
  detail.append(svg);
  const table = el("table", { id: "grid-table" });
  table.append(el("tr", {}, null));
  table.firstChild.append(el("th", {}, "网格 Grid"), el("th", {}, "受理 Reported"),
    el("th", {}, "在办 Open"), el("th", {}, "属地办结率 Local"));
  for (const grid of figures.grids) {
    const tr = el("tr", { "data-grid": grid.key });
    tr.append(el("td", {}, grid.name ?? grid.key), el("td", {}, String(grid.reported)),
      el("td", {}, String(grid.open)), el("td", {}, percent(grid.headline)));
    table.append(tr);
  }
  detail.append(table);
}

async function refresh() {
  try {
    const [communities, daily, city, status] = await Promise.all([
      getJSON("/api/v1/stats/communities"),
      getJSON("/api/v1/stats/daily"),
      getJSON("/api/v1/stats/city"),
      getJSON("/api/v1/status"),
    ]);
    state.rows = new Map(communities.rows.map((row) => [row.key, row]));
    const named = communities.rows.filter((row) => row.key !== null);
    drawTable(named);
    paintMap();
    drawDaily(daily.rows);
    const headline = city.rows.length ? city.rows[0].headline : null;
    const value = document.getElementById("city-headline");
    value.textContent = percent(headline);
    value.dataset.numerator = headline ? headline.numerator : 0;
    value.dataset.denominator = headline ? headline.denominator : 0;
    document.getElementById("status").textContent =
      `已同步至 synced to #${status.position} · 延迟 lag ${status.lag ?? "?"} · ${new Date().toLocaleTimeString()}`;
    document.body.dataset.position = status.position;
  } catch (error) {
    document.getElementById("status").textContent = `更新失败 update failed: ${error.message}`;
  }
}

for (const button of document.querySelectorAll(".toolbar button")) {
  button.addEventListener("click", () => {
    state.mode = button.dataset.mode;
    document.querySelectorAll(".toolbar button").forEach((b) => b.classList.toggle("active", b === button));
    paintMap();
    if (state.selected) select(state.selected);
  });
}

drawMap().then(refresh).then(() => setInterval(refresh, REFRESH_MS));
