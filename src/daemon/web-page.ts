// The web console's one page: the domain list (state, uptime, bytes in/out, clients), refreshed every second, and
// one xterm.js terminal per opened domain over a WebSocket. It carries no secret of its own: the token comes from
// the page's URL and goes with every request; the daemon decides what that token may do (a read-only token's
// keystrokes are dropped by the daemon, the page only says so). Assets are served from the installed npm packages.

/** Escape for an HTML attribute or text node. */
function html(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function webPage(opts: { readOnly: boolean; title: string; token: string }): string {
  const t = html(opts.title);
  // The asset URLs carry the token the page was fetched with (every request needs one); it is the viewer's own.
  const q = `?t=${encodeURIComponent(opts.token)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${t}</title>
<link rel="stylesheet" href="assets/xterm.css${q}">
<style>
  body { margin: 0; font: 14px system-ui, sans-serif; background: #1e1e1e; color: #ddd; display: flex; height: 100vh; }
  nav { width: 22em; padding: 0.8em; overflow-y: auto; border-right: 1px solid #333; flex: none; }
  h1 { font-size: 1.1em; margin: 0 0 0.6em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.25em 0.4em; border-bottom: 1px solid #333; white-space: nowrap; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.domain { cursor: pointer; }
  tr.domain:hover, tr.domain.open { background: #2d3a4a; }
  main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
  #tabs { display: flex; gap: 0.3em; padding: 0.4em; border-bottom: 1px solid #333; min-height: 1.8em; }
  #tabs button { background: #333; color: #ddd; border: 1px solid #555; padding: 0.2em 0.8em; cursor: pointer; }
  #tabs button.active { background: #2d3a4a; border-color: #6a9fd4; }
  #terms { flex: 1; position: relative; }
  .term { position: absolute; inset: 0.4em; display: none; }
  .term.active { display: block; }
  #status { padding: 0.3em 0.6em; border-top: 1px solid #333; font-size: 0.9em; color: #aaa; }
  .ro { color: #e0b050; }
  #device { margin-top: 1em; font: 12px monospace; white-space: pre-wrap; color: #bbb; }
</style>
</head>
<body>
<nav>
  <h1>${t}${opts.readOnly ? ' <span class="ro">(read-only)</span>' : ''}</h1>
  <table>
    <thead><tr><th>name</th><th>state</th><th>up</th><th class="num">in</th><th class="num">out</th><th class="num">clients</th></tr></thead>
    <tbody id="domains"></tbody>
  </table>
  <pre id="device"></pre>
</nav>
<main>
  <div id="tabs"></div>
  <div id="terms"></div>
  <div id="status">Click a domain to open its console.</div>
</main>
<script src="assets/xterm.js${q}"></script>
<script src="assets/addon-fit.js${q}"></script>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("t") || "";
const readOnly = ${opts.readOnly ? 'true' : 'false'};
const q = (extra) => "?t=" + encodeURIComponent(token) + (extra || "");
const consoles = new Map(); // name -> { term, fit, ws, el, tab }
let active = null;

function uptime(startedAt) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(startedAt)) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? h + "h" + String(m).padStart(2, "0") + "m" : m > 0 ? m + "m" + String(s % 60).padStart(2, "0") + "s" : s + "s";
}

function status(text) { document.getElementById("status").textContent = text; }

async function refresh() {
  let doms;
  try {
    const r = await fetch("api/domains" + q(), { cache: "no-store" });
    if (!r.ok) { status("the daemon answered " + r.status); return; }
    doms = await r.json();
  } catch (e) { status("the daemon does not answer"); return; }
  const body = document.getElementById("domains");
  body.replaceChildren();
  for (const d of doms) {
    const tr = document.createElement("tr");
    tr.className = "domain" + (consoles.has(d.name) ? " open" : "");
    tr.dataset.name = d.name;
    const cells = [d.name, d.state, d.startedAt ? uptime(d.startedAt) : "", d.bytesIn, d.bytesOut, d.clients];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = String(v);
      if (i >= 3) td.className = "num";
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => open(d.name));
    body.appendChild(tr);
  }
  refreshDevice();
}

// The open console's vpl011 (what \`vpl011 stat\` and \`--why-irq\` print), refreshed with the list.
async function refreshDevice() {
  const el = document.getElementById("device");
  if (!active) { el.textContent = ""; return; }
  try {
    const r = await fetch("api/stat" + q("&domain=" + encodeURIComponent(active)), { cache: "no-store" });
    const j = await r.json();
    el.textContent = r.ok ? j.lines.join("\\n") + "\\n\\nwhy the interrupt line is where it is:\\n" + j.whyIrq.join("\\n") : active + ": " + j.error;
  } catch (e) { el.textContent = ""; }
}

function show(name) {
  active = name;
  for (const [n, c] of consoles) {
    c.el.classList.toggle("active", n === name);
    c.tab.classList.toggle("active", n === name);
  }
  const c = consoles.get(name);
  if (c) { c.fit.fit(); c.term.focus(); }
  refresh();
}

function open(name) {
  if (consoles.has(name)) { show(name); return; }
  const el = document.createElement("div");
  el.className = "term";
  document.getElementById("terms").appendChild(el);
  const term = new Terminal({ convertEol: false, scrollback: 10000, cursorBlink: !readOnly, disableStdin: readOnly,
    fontFamily: "monospace", fontSize: 14 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  const tab = document.createElement("button");
  tab.textContent = name;
  tab.addEventListener("click", () => show(name));
  document.getElementById("tabs").appendChild(tab);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const wsUrl = proto + "//" + location.host + location.pathname.replace(/[^/]*$/, "") + "ws" + q("&domain=" + encodeURIComponent(name));
  const ws = new WebSocket(wsUrl);
  ws.binaryType = "arraybuffer";
  const c = { term, fit, ws, el, tab };
  consoles.set(name, c);
  ws.onopen = () => status(name + ": attached" + (readOnly ? " (read-only: typing is not delivered)" : ""));
  ws.onmessage = (ev) => term.write(typeof ev.data === "string" ? ev.data : new Uint8Array(ev.data));
  ws.onclose = (ev) => { status(name + ": detached" + (ev.reason ? " (" + ev.reason + ")" : "")); term.write("\\r\\n[detached]\\r\\n"); };
  const enc = new TextEncoder();
  term.onData((d) => { if (!readOnly && ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  show(name);
}

// Resizing only refits the local terminal: the vuart has no window size to tell the guest.
window.addEventListener("resize", () => { const c = active && consoles.get(active); if (c) c.fit.fit(); });
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
}
