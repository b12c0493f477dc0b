/**
 * The page `switchyard serve` answers at GET /: a chat box that streams the answer from
 * /v1/chat/completions and, beside it, a live heatmap of MoE layers x experts lighting up the
 * experts each token uses (the routing the server streams when a request asks for
 * `"switchyard": {"trace": true}`), the routing weights of any token on hover, and the expert
 * cache's hit rate. One self-contained document (inline CSS and JavaScript, no CDN, works
 * offline). Model facts come from GET /switchyard/info.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchyard</title>
<style>
  :root { --bg: #f4f5f7; --card: #fff; --ink: #1b1f2a; --muted: #5b6478; --accent: #2563eb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--ink); }
  header { background: #1b1f2a; color: #fff; padding: 12px 20px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header span { color: #b9c0d0; font-size: 13px; }
  main { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(360px, 1.1fr); gap: 16px; padding: 16px; }
  .card { background: var(--card); border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  h2 { font-size: 15px; margin: 0 0 8px; }
  #log { height: 52vh; overflow-y: auto; display: flex; flex-direction: column; gap: 10px; }
  .msg { padding: 8px 10px; border-radius: 6px; white-space: pre-wrap; }
  .user { background: #e8efff; align-self: flex-end; max-width: 85%; }
  .assistant { background: #f1f2f5; max-width: 95%; }
  .tok { border-radius: 3px; cursor: default; }
  .tok:hover, .tok.sel { background: #fde68a; }
  form { display: flex; gap: 8px; margin-top: 10px; }
  textarea { flex: 1; min-height: 48px; font: inherit; padding: 8px; border: 1px solid #cfd5e1; border-radius: 6px; resize: vertical; }
  button { background: var(--accent); color: #fff; border: 0; border-radius: 6px; padding: 0 18px; font: inherit; cursor: pointer; }
  button:disabled { background: #9db4ea; }
  #grid { display: grid; gap: 2px; margin-top: 6px; }
  .cell { height: 18px; border-radius: 2px; background: #eef1f6; transition: background-color .25s; }
  .lab { font-size: 11px; color: var(--muted); text-align: right; padding-right: 4px; line-height: 18px; }
  .head { font-size: 10px; color: var(--muted); text-align: center; }
  #stats { display: flex; gap: 18px; flex-wrap: wrap; margin-top: 10px; font-size: 13px; color: var(--muted); }
  #stats b { color: var(--ink); }
  #detail { margin-top: 10px; font-size: 13px; min-height: 3em; color: var(--muted); }
  .err { color: #b91c1c; }
</style>
</head>
<body>
<header><h1>Switchyard</h1><span id="model">loading…</span></header>
<main>
  <section class="card">
    <h2>Chat</h2>
    <div id="log"></div>
    <form id="form"><textarea id="input" placeholder="Ask something and press Enter"></textarea><button id="send">Send</button></form>
  </section>
  <section class="card">
    <h2>Experts firing <span id="which" style="font-weight:normal;color:var(--muted)">(the current token)</span></h2>
    <div id="grid"></div>
    <div id="stats"><span>tokens <b id="ntok">0</b></span><span>tokens/s <b id="tps">–</b></span><span>expert cache hit rate <b id="hit">–</b></span></div>
    <div id="detail">Hover a token of the answer to see its experts and routing weights.</div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = null, cells = [], messages = [], busy = false;

function esc(s) { return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]); }

function buildGrid() {
  const grid = $("grid");
  grid.style.gridTemplateColumns = "56px repeat(" + info.experts + ", 1fr)";
  let html = '<div></div>';
  for (let e = 0; e < info.experts; e++) html += '<div class="head">' + (info.experts <= 32 || e % 8 === 0 ? e : "") + '</div>';
  cells = [];
  info.layers.forEach((layer, li) => {
    html += '<div class="lab">blk ' + layer + '</div>';
    for (let e = 0; e < info.experts; e++) html += '<div class="cell" id="c' + li + '_' + e + '" title="block ' + layer + ', expert ' + e + '"></div>';
  });
  grid.innerHTML = html;
  info.layers.forEach((_, li) => { cells[li] = []; for (let e = 0; e < info.experts; e++) cells[li][e] = $("c" + li + "_" + e); });
}

function show(routing) {
  if (!routing || !cells.length) return;
  for (const row of cells) for (const c of row) c.style.backgroundColor = "#eef1f6";
  routing.forEach((r) => {
    const li = info.layers.indexOf(r.layer);
    if (li < 0) return;
    const max = Math.max(...r.weights, 1e-9);
    r.ids.forEach((e, i) => {
      const a = 0.25 + 0.75 * (r.weights[i] / max);
      if (cells[li][e]) cells[li][e].style.backgroundColor = "rgba(37, 99, 235, " + a.toFixed(3) + ")";
    });
  });
}

function describe(routing) {
  return routing.map((r) => "block " + r.layer + ": " + r.ids.map((e, i) => "#" + e + " " + (100 * r.weights[i]).toFixed(1) + "%").join(", ")).join(" · ");
}

function add(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

async function send(text) {
  busy = true; $("send").disabled = true;
  messages.push({ role: "user", content: text });
  add("user", text);
  const out = add("assistant", "");
  let answer = "", n = 0;
  const t0 = performance.now();
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: info ? info.model : "switchyard", messages, stream: true, max_tokens: 128, switchyard: { trace: true } }),
    });
    if (!res.ok) throw new Error((await res.json()).error.message);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let at;
      while ((at = buf.indexOf("\\n\\n")) >= 0) {
        const line = buf.slice(0, at).trim();
        buf = buf.slice(at + 2);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        const sy = chunk.switchyard || {};
        if (delta && delta.content) {
          answer += delta.content;
          const span = document.createElement("span");
          span.className = "tok";
          span.textContent = delta.content;
          if (sy.routing) {
            span.title = describe(sy.routing);
            span.addEventListener("mouseenter", () => { show(sy.routing); $("detail").textContent = JSON.stringify(delta.content) + " — " + describe(sy.routing); });
          }
          out.appendChild(span);
          n++;
          $("ntok").textContent = String(n);
          $("tps").textContent = (n / ((performance.now() - t0) / 1000)).toFixed(1);
          $("log").scrollTop = $("log").scrollHeight;
        }
        if (sy.routing) show(sy.routing);
        if (sy.cache) $("hit").textContent = (100 * sy.cache.hitRate).toFixed(1) + "%";
      }
    }
    messages.push({ role: "assistant", content: answer });
  } catch (e) {
    out.innerHTML = '<span class="err">' + esc(e.message || e) + '</span>';
    messages.pop();
  } finally {
    busy = false; $("send").disabled = false;
  }
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || busy) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("form").requestSubmit(); }
});

fetch("/switchyard/info").then((r) => r.json()).then((j) => {
  info = j;
  $("model").textContent = j.model + " · " + j.architecture + " · " + j.layers.length + " MoE layers × " + j.experts + " experts, " + j.used + " per token" + (j.expertCache ? " · expert cache " + j.expertCache : "");
  $("hit").textContent = j.expertCache ? "–" : "all resident";
  buildGrid();
}).catch((e) => { $("model").textContent = "cannot reach the server: " + e; });
</script>
</body>
</html>
`;
