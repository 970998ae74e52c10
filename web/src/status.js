// status.js: the relay status page. It reads /api/status once, then follows
// /api/status/stream (Server-Sent Events, one status JSON per event) and falls
// back to polling /api/status every second when the stream is unavailable.
// The JSON shape is documented in web/README.md ("Status API").
//
// Pictures first: cards for the totals, two live uPlot charts for the
// selected world (tick jitter; ticks and messages per second), then a table
// of every world (click a row to chart it).

import uPlot from 'uplot';

const $ = (id) => document.getElementById(id);
/** Points kept per series (at one status per second: five minutes). */
const KEEP = 300;
const POLL_MS = 1000;

const series = new Map(); // world id → {t, p50, p99, msgs, ticks}
let selected = null;
let charts = null;

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = !text;
}

function num(v, digits) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function record(status) {
  const t = Date.parse(status.time) / 1000 || Date.now() / 1000;
  for (const w of status.worlds || []) {
    let s = series.get(w.id);
    if (!s) {
      s = { t: [], p50: [], p99: [], msgs: [], ticks: [] };
      series.set(w.id, s);
    }
    if (s.t.length && t <= s.t[s.t.length - 1]) continue; // repeated status
    s.t.push(t);
    s.p50.push(w.jitter_ms ? w.jitter_ms.p50 : null);
    s.p99.push(w.jitter_ms ? w.jitter_ms.p99 : null);
    s.msgs.push(w.msgs_per_s ?? null);
    s.ticks.push(w.tick_rate ?? null);
    for (const k of Object.keys(s)) if (s[k].length > KEEP) s[k].splice(0, s[k].length - KEEP);
  }
}

function chartOpts(title, labels, colors, unit) {
  const width = Math.max(320, $('charts').clientWidth / (window.innerWidth > 1000 ? 2 : 1) - 40);
  return {
    title,
    width,
    height: 220,
    // A single point would make uPlot stretch the axis over years: show the
    // last minute until there is a span to show.
    scales: { x: { time: true, range: (u, min, max) => (max - min < 60 ? [max - 60, max + 1] : [min, max]) } },
    axes: [
      { stroke: '#8b93a5', grid: { stroke: '#232c3b' }, ticks: { stroke: '#232c3b' } },
      { stroke: '#8b93a5', grid: { stroke: '#232c3b' }, ticks: { stroke: '#232c3b' }, label: unit, size: 60 },
    ],
    series: [
      {},
      ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, points: { show: false }, spanGaps: true })),
    ],
  };
}

function ensureCharts() {
  if (charts) return;
  charts = {
    jitter: new uPlot(chartOpts('tick jitter', ['p50 ms', 'p99 ms'], ['#06d6a0', '#ff6b6b'], 'ms'), [[], [], []], $('chart-jitter')),
    rate: new uPlot(chartOpts('throughput', ['messages/s', 'ticks/s'], ['#4cc9f0', '#ffd166'], 'per s'), [[], [], []], $('chart-rate')),
  };
}

function render(status) {
  const worlds = status.worlds || [];
  if (!selected || !worlds.some((w) => w.id === selected)) selected = worlds.length ? worlds[0].id : null;
  $('c-worlds').textContent = String(worlds.length);
  $('c-peers').textContent = String(status.peers ?? '–');
  $('c-msgs').textContent = num(worlds.reduce((a, w) => a + (w.msgs_per_s || 0), 0), 1);
  $('c-uptime').textContent = typeof status.uptime_s === 'number' ? formatDuration(status.uptime_s) : '–';
  $('selected').textContent = selected ?? '–';
  const tbody = $('worlds');
  tbody.replaceChildren(
    ...worlds.map((w) => {
      const tr = document.createElement('tr');
      tr.dataset.world = w.id;
      if (w.id === selected) tr.className = 'selected';
      const cells = [
        w.id,
        num(w.time_s, 2),
        String(w.seq ?? '–'),
        num(w.tps, 0),
        num(w.tick_rate, 2),
        num(w.jitter_ms?.p50, 3),
        num(w.jitter_ms?.p99, 3),
        num(w.msgs_per_s, 1),
        String(w.peers ?? '–'),
      ];
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.append(td);
      }
      tr.addEventListener('click', () => {
        selected = w.id;
        render(status);
      });
      return tr;
    }),
  );
  ensureCharts();
  const s = series.get(selected);
  if (s) {
    charts.jitter.setData([s.t, s.p50, s.p99]);
    charts.rate.setData([s.t, s.msgs, s.ticks]);
    document.body.dataset.points = String(s.t.length);
  }
  document.body.dataset.state = 'live';
}

function formatDuration(sec) {
  const s = Math.floor(sec);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function accept(status) {
  if (!status || typeof status !== 'object' || !Array.isArray(status.worlds)) {
    showError('the status answer does not have the expected shape (see web/README.md)');
    return;
  }
  showError('');
  record(status);
  render(status);
}

async function poll() {
  try {
    const res = await fetch('/api/status', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`GET /api/status → ${res.status}`);
    accept(await res.json());
  } catch (err) {
    showError(`status unavailable: ${err.message}`);
  }
}

function follow() {
  let gotOne = false;
  let es;
  try {
    es = new EventSource('/api/status/stream');
  } catch {
    setInterval(poll, POLL_MS);
    return;
  }
  es.onmessage = (ev) => {
    gotOne = true;
    try {
      accept(JSON.parse(ev.data));
    } catch {
      showError('a status event is not JSON');
    }
  };
  es.onerror = () => {
    if (gotOne) return; // EventSource reconnects by itself
    es.close();
    setInterval(poll, POLL_MS);
  };
}

window.addEventListener('resize', () => {
  if (!charts) return;
  for (const c of Object.values(charts)) {
    c.setSize({ width: Math.max(320, $('charts').clientWidth / (window.innerWidth > 1000 ? 2 : 1) - 40), height: 220 });
  }
});

poll().then(follow);
