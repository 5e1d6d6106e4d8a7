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
}
