/// The web view's page, script and style, built into the binary so `--web` works offline with nothing to
/// install: plain HTML, CSS and hand-written JavaScript (no build step, no libraries, no CDN). The script
/// draws on one canvas, so a thousand nodes and their links cost one path per link type, not a DOM node each.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WOW</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/view.css">
<script src="/view.js" defer></script>
</head>
<body data-mode="overlay">
<header>
  <h1>WOW <span id="title"></span></h1>
  <span id="state">connecting…</span>
</header>
<main>
  <div id="stage">
    <canvas id="ring" aria-label="The overlay ring: nodes at their addresses, links as chords"></canvas>
    <div id="tip" hidden></div>
  </div>
  <aside>
    <section id="timeline">
      <h2>Timeline</h2>
      <div class="row">
        <button id="play" type="button">pause</button>
        <input id="scrub" type="range" min="0" max="0" step="0.01" value="0" aria-label="virtual time">
      </div>
      <div class="row">
        <span id="time">0 s</span>
        <label>speed <select id="speed">
          <option value="1">1×</option><option value="10" selected>10×</option><option value="100">100×</option>
        </select></label>
      </div>
    </section>
    <section id="node">
      <h2 id="n-name">node</h2>
      <p id="n-ring"></p>
      <p><b>traffic</b> <span id="n-traffic"></span></p>
      <p><b>drops</b> <span id="n-drops"></span></p>
      <table>
        <thead><tr><th></th><th>peer</th><th>type</th><th>path</th><th>RTT ms</th><th>age s</th><th>silent s</th></tr></thead>
        <tbody id="n-connections"></tbody>
      </table>
    </section>
    <section>
      <h2>Figures</h2>
      <dl>
        <dt>nodes</dt><dd id="f-nodes">0</dd>
        <dt>links</dt><dd id="f-links">0</dd>
        <dt><i class="k near"></i>near</dt><dd id="f-near">0</dd>
        <dt><i class="k far"></i>far</dt><dd id="f-far">0</dd>
        <dt><i class="k shortcut"></i>shortcut</dt><dd id="f-shortcut">0</dd>
        <dt><i class="k leaf"></i>leaf</dt><dd id="f-leaf">0</dd>
        <dt><i class="k forwarder"></i>forwarder</dt><dd id="f-forwarder">0</dd>
        <dt>path switches</dt><dd id="f-switches">0</dd>
        <dt>events</dt><dd id="f-events">0</dd>
        <dt>frame time</dt><dd id="f-frame">–</dd>
      </dl>
      <p class="legend">Dashed: relayed. A link counts under each type either end gave it.</p>
    </section>
    <section>
      <h2>Recent events</h2>
      <ol id="recent"></ol>
    </section>
  </aside>
</main>
</body>
</html>
"""#

    static let style = #"""
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { font: 13px/1.4 system-ui, sans-serif; color: #222; background: #fafafa; display: flex; flex-direction: column; }
header { display: flex; align-items: baseline; gap: 1em; padding: 6px 14px; border-bottom: 1px solid #ddd; background: #fff; }
h1 { font-size: 16px; margin: 0; }
h1 span { font-weight: normal; color: #555; }
h2 { font-size: 13px; margin: 0 0 4px; text-transform: uppercase; letter-spacing: .04em; color: #666; }
#state { color: #777; }
main { flex: 1; display: flex; min-height: 0; }
#stage { flex: 1; position: relative; min-width: 0; }
#ring { width: 100%; height: 100%; display: block; }
#tip { position: absolute; background: #fff; border: 1px solid #bbb; padding: 2px 6px; pointer-events: none; white-space: nowrap; }
aside { width: 380px; overflow-y: auto; border-left: 1px solid #ddd; background: #fff; padding: 10px 12px; }
section { margin-bottom: 14px; }
.row { display: flex; align-items: center; gap: 8px; margin: 4px 0; }
#scrub { flex: 1; }
body:not([data-mode="timeline"]) #timeline { display: none; }
body:not([data-mode="node"]) #node { display: none; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
dt { color: #555; }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.k { display: inline-block; width: 14px; height: 3px; margin-right: 5px; vertical-align: middle; }
.k.near { background: #4e79a7; } .k.far { background: #f28e2b; } .k.shortcut { background: #e15759; height: 4px; }
.k.leaf { background: #9a9a9a; } .k.forwarder { background: #59a14f; }
.legend { color: #777; font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { text-align: left; padding: 1px 4px; border-bottom: 1px solid #eee; }
ol { list-style: none; padding: 0; margin: 0; font-size: 12px; }
li { padding: 1px 0; border-bottom: 1px solid #f2f2f2; }
li .t { color: #999; font-variant-numeric: tabular-nums; }
li.note { font-weight: bold; }
li.switch { color: #59a14f; }
"""#

    static let script = #"""
'use strict';
// WOW web view: draws an overlay (or one node and its peers) from the server-sent events at /events.
// Hand-written, no dependencies. Nodes sit on the ring at their address; links are chords, coloured by
// connection type, dashed when relayed.
(function () {
  const ORDER = ['leaf', 'structured.near', 'structured.far', 'forwarder', 'other', 'structured.shortcut'];
  const RANK = ['structured.shortcut', 'structured.far', 'structured.near', 'forwarder', 'leaf'];
  const LABEL = { 'structured.near': 'near', 'structured.far': 'far', 'structured.shortcut': 'shortcut',
    leaf: 'leaf', forwarder: 'forwarder', other: 'other' };
  const COLOR = { 'structured.near': '#4e79a7', 'structured.far': '#f28e2b', 'structured.shortcut': '#e15759',
    leaf: '#9a9a9a', forwarder: '#59a14f', other: '#b07aa1' };
  const $ = (id) => document.getElementById(id);
  const canvas = $('ring');
  const ctx = canvas.getContext('2d');

  let mode = 'overlay';
  let events = [];      // every event received, in order
  let applied = 0;      // how many of them `nodes` reflects
  let nodes = new Map(); // id (40 hex digits) -> node
  let pathSwitches = 0;
  let recent = [];
  let typesSeen = new Set();
  let playhead = 0, lastT = 0, playing = true, speed = 10, finished = false, connected = false;
  let status = null, previousStatus = null, rates = null;
  let hover = null, dirty = true, panelDirty = true;
  const frameTimes = [];
  let figures = { nodes: 0, peers: 0, links: 0, relayed: 0, byType: {}, frameMs: 0 };

  const position = (id) => parseInt(id.slice(0, 12), 16) / 281474976710656;
  const short = (id) => id.slice(0, 8);
  function node(id) {
    let n = nodes.get(id);
    if (!n) {
      n = { id, name: '', detail: '', pos: position(id), live: false, member: false, routable: false, far: false,
        links: new Map(), x: 0, y: 0 };
      nodes.set(id, n);
    }
    return n;
  }
  const nameOf = (id) => { const n = nodes.get(id); return n && n.name ? n.name : short(id); };
  const typeNames = (ty) => ty.map((t) => LABEL[t] || t).join('+') || 'untyped';
  const path = (l) => l.via ? 'relay via ' + nameOf(l.via) : l.tr + ' direct';
  function category(ty) {
    for (const t of RANK) if (ty.includes(t)) return t;
    return 'other';
  }

  function log(e, text, kind) {
    recent.push({ t: e.t, text, kind: kind || e.k });
    if (recent.length > 60) recent.shift();
  }

  function apply(e) {
    switch (e.k) {
      case 'join': {
        const n = node(e.n);
        Object.assign(n, { name: e.name, detail: e.d, live: true, member: true });
        log(e, `${e.name} joined (${e.d})`);
        break;
      }
      case 'leave': {
        const n = node(e.n);
        n.live = false;
        n.links.clear();
        log(e, `${nameOf(e.n)} left`);
        break;
      }
      case 'routable': node(e.n).routable = true; break;
      case 'far': node(e.n).far = true; break;
      case 'link': {
        const n = node(e.n);
        const had = n.links.get(e.p);
        const l = { ty: e.ty, tr: e.tr, via: e.via };
        n.links.set(e.p, l);
        node(e.p);
        if (e.sw) {
          pathSwitches++;
          log(e, `${nameOf(e.n)} → ${nameOf(e.p)}: path now ${path(l)}`, 'switch');
        } else if (!had) {
          log(e, `${nameOf(e.n)} → ${nameOf(e.p)}: ${typeNames(e.ty)} over ${path(l)}`);
        } else {
          log(e, `${nameOf(e.n)} → ${nameOf(e.p)}: now ${typeNames(e.ty)}`);
        }
        break;
      }
      case 'unlink':
        node(e.n).links.delete(e.p);
        log(e, `${nameOf(e.n)} → ${nameOf(e.p)}: closed`);
        break;
      case 'note': log(e, e.text, 'note'); break;
    }
  }

  function reset() {
    nodes = new Map();
    applied = 0;
    pathSwitches = 0;
    recent = [];
  }

  // Applies the events up to virtual second `t` (timeline) or all of them (live).
  function advanceTo(t) {
    if (applied > 0 && applied <= events.length && events[applied - 1].t > t) reset();
    while (applied < events.length && events[applied].t <= t) apply(events[applied++]);
    dirty = panelDirty = true;
  }

  // MARK: the stream
  const source = new EventSource('/events');
  source.addEventListener('hello', (m) => {
    const hello = JSON.parse(m.data);
    mode = hello.mode;
    document.title = 'WOW · ' + hello.title;
    $('title').textContent = hello.title;
    document.body.dataset.mode = mode;
    // A reconnected stream starts over from the first event.
    events = [];
    typesSeen = new Set();
    finished = false;
    reset();
    connected = true;
    panelDirty = true;
  });
  source.addEventListener('events', (m) => {
    const batch = JSON.parse(m.data);
    for (const e of batch) {
      events.push(e);
      if (e.k === 'link') for (const t of e.ty) typesSeen.add(t);
    }
    if (events.length) lastT = events[events.length - 1].t;
    if (mode !== 'timeline') advanceTo(Infinity);
    panelDirty = true;
  });
  source.addEventListener('status', (m) => {
    previousStatus = status;
    status = JSON.parse(m.data);
    if (previousStatus && status.uptime_s > previousStatus.uptime_s) {
      const dt = status.uptime_s - previousStatus.uptime_s;
      const rate = (k) => (status[k] - previousStatus[k]) / dt;
      rates = { pin: rate('packets_in'), pout: rate('packets_out'), bin: rate('bytes_in'), bout: rate('bytes_out') };
    }
    panelDirty = dirty = true;
  });
  source.addEventListener('finished', () => { finished = true; panelDirty = true; });
  source.onerror = () => { connected = false; panelDirty = true; };

  // MARK: drawing
  function draw() {
    const started = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const cx = w / 2, cy = h / 2, r = Math.max(10, Math.min(w, h) / 2 - 40);
    ctx.strokeStyle = '#d8d8d8';
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.stroke();

    let drawnNodes = 0, peers = 0;
    for (const n of nodes.values()) {
      const a = n.pos * 2 * Math.PI - Math.PI / 2;
      n.x = cx + r * Math.cos(a);
      n.y = cy + r * Math.sin(a);
    }
    const buckets = new Map();
    const byType = {};
    let links = 0, relayed = 0;
    for (const a of nodes.values()) {
      if (!a.live) continue;
      for (const [peer, l] of a.links) {
        const b = nodes.get(peer);
        const back = b.live ? b.links.get(a.id) : undefined;
        if (back && peer < a.id) continue; // drawn once, from the lower address
        links++;
        const ty = back ? [...new Set(l.ty.concat(back.ty))] : l.ty;
        for (const t of ty) byType[t] = (byType[t] || 0) + 1;
        const isRelayed = !!l.via || (back && !!back.via);
        if (isRelayed) relayed++;
        const key = category(ty) + (isRelayed ? '|relayed' : '');
        let list = buckets.get(key);
        if (!list) buckets.set(key, list = []);
        list.push(a, b);
      }
    }
    const many = links > 1500;
    for (const type of ORDER) {
      for (const suffix of ['', '|relayed']) {
        const list = buckets.get(type + suffix);
        if (!list) continue;
        ctx.strokeStyle = COLOR[type];
        ctx.lineWidth = type === 'structured.shortcut' ? 2.5 : 1;
        ctx.globalAlpha = type === 'structured.shortcut' ? 1 : (many ? 0.35 : 0.8);
        ctx.setLineDash(suffix ? [5, 4] : []);
        ctx.beginPath();
        for (let i = 0; i < list.length; i += 2) {
          const a = list[i], b = list[i + 1];
          ctx.moveTo(a.x, a.y);
          // A chord bent toward the centre (near links stay by the rim, long ones cross the middle); straight
          // when there are thousands, which draws several times faster.
          if (many) ctx.lineTo(b.x, b.y);
          else ctx.quadraticCurveTo(cx + ((a.x + b.x) / 2 - cx) * 0.4, cy + ((a.y + b.y) / 2 - cy) * 0.4, b.x, b.y);
        }
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
    if (hover && hover.live) {
      ctx.strokeStyle = '#111';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (const peer of hover.links.keys()) {
        const b = nodes.get(peer);
        ctx.moveTo(hover.x, hover.y);
        ctx.lineTo(b.x, b.y);
      }
      ctx.stroke();
    }

    const size = nodes.size > 300 ? 2 : 4;
    ctx.fillStyle = '#222';
    ctx.beginPath();
    for (const n of nodes.values()) {
      if (!n.live) continue;
      drawnNodes++;
      ctx.moveTo(n.x + size, n.y);
      ctx.arc(n.x, n.y, size, 0, 2 * Math.PI);
    }
    ctx.fill();
    // Peers a node mentions that this view has not seen join (`wow run`: every peer of the node).
    ctx.strokeStyle = '#222';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const n of nodes.values()) {
      if (n.live || n.member) continue;
      peers++;
      ctx.moveTo(n.x + size, n.y);
      ctx.arc(n.x, n.y, size, 0, 2 * Math.PI);
    }
    ctx.stroke();
    if (mode === 'node' && status) {
      const me = nodes.get(status.address);
      if (me) {
        ctx.fillStyle = '#e15759';
        ctx.beginPath();
        ctx.arc(me.x, me.y, 7, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (drawnNodes + peers <= 48) {
      ctx.fillStyle = '#444';
      ctx.font = '11px sans-serif';
      ctx.textBaseline = 'middle';
      for (const n of nodes.values()) {
        if (!n.live && n.member) continue;
        const a = n.pos * 2 * Math.PI - Math.PI / 2;
        ctx.textAlign = Math.cos(a) >= 0 ? 'left' : 'right';
        ctx.fillText(n.name || short(n.id), cx + (r + 10) * Math.cos(a), cy + (r + 10) * Math.sin(a));
      }
    }
    const elapsed = performance.now() - started;
    frameTimes.push(elapsed);
    if (frameTimes.length > 60) frameTimes.shift();
    const mean = frameTimes.reduce((s, x) => s + x, 0) / frameTimes.length;
    figures = { nodes: drawnNodes, peers, links, relayed, byType, frameMs: mean, frameMaxMs: Math.max(...frameTimes) };
    panelDirty = true;
  }

  // MARK: the side panel
  const fmt = (x, d) => (x === undefined || x === null) ? '–' : Number(x).toFixed(d === undefined ? 1 : d);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function panel() {
    const f = figures;
    $('state').textContent = connected ? (mode === 'timeline' ? (finished ? 'recorded run' : 'simulating…') : 'live')
      : 'disconnected';
    $('f-nodes').textContent = f.nodes + (f.peers ? ` (+${f.peers} peers)` : '');
    $('f-links').textContent = f.links + (f.relayed ? ` (${f.relayed} relayed)` : '');
    for (const t of ['structured.near', 'structured.far', 'structured.shortcut', 'leaf', 'forwarder']) {
      $('f-' + LABEL[t]).textContent = f.byType[t] || 0;
    }
    $('f-switches').textContent = pathSwitches;
    $('f-events').textContent = `${applied}/${events.length}`;
    $('f-frame').textContent = `${fmt(f.frameMs, 2)} ms (max ${fmt(f.frameMaxMs, 1)})`;
    if (mode === 'timeline') {
      const slider = $('scrub');
      slider.max = lastT;
      slider.value = playhead;
      $('time').textContent = `${fmt(playhead, 1)} / ${fmt(lastT, 1)} s virtual`;
      $('play').textContent = playing ? 'pause' : 'play';
    }
    const list = $('recent');
    list.replaceChildren(...recent.slice(-25).reverse().map((r) => {
      const li = el('li', undefined, r.kind);
      li.append(el('span', fmt(r.t, 2) + ' s', 't'), document.createTextNode(' ' + r.text));
      return li;
    }));
    if (mode === 'node' && status) nodePanel();
  }

  function nodePanel() {
    const s = status;
    $('n-name').textContent = `${s.name} · ${short(s.address)}`;
    $('n-ring').textContent = `${(position(s.address) * 360).toFixed(1)}° on the ring · ${s.ring_member ? 'ring member' : 'not yet a ring member'}`
      + ` · left ${s.left_neighbour ? nameOf(s.left_neighbour) : '–'} · right ${s.right_neighbour ? nameOf(s.right_neighbour) : '–'}`;
    $('n-traffic').textContent = rates
      ? `in ${fmt(rates.pin)} pkt/s (${fmt(rates.bin / 1024)} KiB/s) · out ${fmt(rates.pout)} pkt/s (${fmt(rates.bout / 1024)} KiB/s)`
      : `in ${s.packets_in} pkts · out ${s.packets_out} pkts`;
    const drops = Object.entries(s.drops || {}).sort((a, b) => b[1] - a[1]);
    $('n-drops').textContent = drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
    const rows = s.connections.slice().sort((a, b) => category(a.local_types).localeCompare(category(b.local_types)));
    $('n-connections').replaceChildren(...rows.map((c) => {
      const tr = el('tr');
      const via = c.transport === 'relay' ? 'relay via ' + nameOf(c.remote_uri.replace('relay://', '').split('/')[0])
        : c.transport + ' direct';
      const swatch = el('td', '■');
      swatch.style.color = COLOR[category(c.local_types)];
      tr.append(swatch, el('td', nameOf(c.peer)), el('td', typeNames(c.local_types)), el('td', via),
        el('td', fmt(c.rtt_ms, 1)), el('td', fmt(c.age_s, 0)), el('td', fmt(c.silent_s, 1)));
      return tr;
    }));
  }

  // MARK: controls
  $('play').addEventListener('click', () => {
    if (!playing && playhead >= lastT) playhead = 0;
    playing = !playing;
    panelDirty = true;
  });
  $('scrub').addEventListener('input', (e) => {
    playhead = Number(e.target.value);
    playing = false;
    advanceTo(playhead);
  });
  $('speed').addEventListener('change', (e) => { speed = Number(e.target.value); });
  canvas.addEventListener('mousemove', (e) => {
    const rect = canvas.getBoundingClientRect();
    const x = e.clientX - rect.left, y = e.clientY - rect.top;
    let best = null, bestD = 64;
    for (const n of nodes.values()) {
      if (!n.live && n.member) continue;
      const d = (n.x - x) ** 2 + (n.y - y) ** 2;
      if (d < bestD) { best = n; bestD = d; }
    }
    if (best !== hover) {
      hover = best;
      dirty = true;
      const tip = $('tip');
      if (best) {
        const counts = {};
        for (const l of best.links.values()) { const c = LABEL[category(l.ty)]; counts[c] = (counts[c] || 0) + 1; }
        tip.textContent = `${best.name || short(best.id)} ${short(best.id)} ${best.detail ? '(' + best.detail + ')' : ''} · `
          + (Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'no links seen');
        tip.style.left = (x + 12) + 'px';
        tip.style.top = (y + 12) + 'px';
        tip.hidden = false;
      } else {
        tip.hidden = true;
      }
    }
  });
  window.addEventListener('resize', () => { dirty = true; });

  let previousFrame = performance.now(), lastPanel = 0;
  function frame(now) {
    const dt = Math.min(0.25, (now - previousFrame) / 1000);
    previousFrame = now;
    if (mode === 'timeline' && playing && events.length) {
      playhead = Math.min(lastT, playhead + dt * speed);
      advanceTo(playhead);
      if (playhead >= lastT && finished) playing = false;
    }
    if (dirty) { dirty = false; draw(); }
    if (panelDirty && now - lastPanel > 250) { panelDirty = false; lastPanel = now; panel(); }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);

  // For scripts and tests: what the page shows now.
  window.wowView = {
    figures: () => Object.assign({ mode, connected, finished, events: events.length, applied, pathSwitches,
      typesSeen: [...typesSeen].sort(), playhead }, figures),
    events: () => events,
    seek: (t) => { playing = false; playhead = Math.max(0, Math.min(lastT, t)); advanceTo(playhead); },
    redraw: () => { draw(); return figures; },
  };
})();
"""#
}
