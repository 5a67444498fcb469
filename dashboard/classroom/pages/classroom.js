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
  const svg = document.getElementById(id);
  const w = 600, h = 220, pad = 30;
  if (!values.length) { svg.innerHTML = ""; return; }
  const lo = Math.min(...values), hi = Math.max(...values);
  const span = hi - lo || 1;
  const pts = values.map((v, i) => [
    pad + (values.length === 1 ? 0 : i * (w - 2 * pad) / (values.length - 1)),
    h - pad - (v - lo) * (h - 2 * pad) / span]);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = `<polyline fill="none" stroke="#1f5f8b" stroke-width="2" points="${
    pts.map(p => p.join(",")).join(" ")}"/>` +
    `<text x="4" y="${pad}" font-size="11">${fmt(hi, 2)}</text>` +
    `<text x="4" y="${h - pad}" font-size="11">${fmt(lo, 2)}</text>`;
}
