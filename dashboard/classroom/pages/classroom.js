// Shared helpers of the classroom pages: API calls with the token, formatting, charts.
async function api(method, path, body, token) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["X-Classroom-Token"] = token;
  try {
    const response = await fetch(path, {method, headers,
      body: body === undefined ? undefined : JSON.stringify(body)});
    let data = {};
    try { data = await response.json(); } catch (e) { data = {error: "no answer"}; }
    return {ok: response.ok, status: response.status, data};
  } catch (e) {
    return {ok: false, status: 0, data: {error: "the server cannot be reached"}};
  }
}
function fmt(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  return Number(x).toLocaleString("en-US", {minimumFractionDigits: digits,
                                            maximumFractionDigits: digits});
}
function show(id, text, error) {
  const el = document.getElementById(id);
  el.textContent = text || "";
  el.className = "msg " + (error ? "error" : "ok");
}
function esc(text) {
  return String(text).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function rows(id, items, cells) {
  document.getElementById(id).innerHTML = items.map(
    item => "<tr>" + cells(item).map(c => `<td>${c}</td>`).join("") + "</tr>").join("");
}
function bookRows(id, bids, asks) {
  const n = Math.max(bids.length, asks.length, 1);
  const out = [];
  for (let i = 0; i < n; i++) {
    const b = bids[i], a = asks[i];
    out.push([b ? fmt(b[1]) : "", b ? `<span class="buy">${fmt(b[0], 2)}</span>` : "",
              a ? `<span class="sell">${fmt(a[0], 2)}</span>` : "", a ? fmt(a[1]) : ""]);
  }
  rows(id, out, r => r);
}
function lineChart(id, values) {
  // null marks a day without a listed trade (no close): the line has a gap there
  const svg = document.getElementById(id);
  const w = 600, h = 220, pad = 30;
  const known = values.filter(v => v !== null && v !== undefined);
  if (!known.length) { svg.innerHTML = ""; return; }
  const lo = Math.min(...known), hi = Math.max(...known);
  const span = hi - lo || 1;
  const x = i => pad + (values.length === 1 ? 0 : i * (w - 2 * pad) / (values.length - 1));
  const y = v => h - pad - (v - lo) * (h - 2 * pad) / span;
  const segments = [[]];
  values.forEach((v, i) => {
    if (v === null || v === undefined) { segments.push([]); return; }
    segments[segments.length - 1].push(`${x(i)},${y(v)}`);
  });
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = segments.filter(s => s.length).map(s => s.length === 1
    ? `<circle r="2" fill="#1f5f8b" cx="${s[0].split(",")[0]}" cy="${s[0].split(",")[1]}"/>`
    : `<polyline fill="none" stroke="#1f5f8b" stroke-width="2" points="${s.join(" ")}"/>`
  ).join("") +
    `<text x="4" y="${pad}" font-size="11">${fmt(hi, 2)}</text>` +
    `<text x="4" y="${h - pad}" font-size="11">${fmt(lo, 2)}</text>`;
}
