// vrm web calendar: renders vrmd's JSON API (/api/...) as a hosts x time timeline, a booking
// form and a reservation page. Plain JavaScript, no build step, no dependencies.
//
// URL parameters (used by people and by tests/e2e/web_test.sh):
//   /?span=24                  hours shown on the timeline
//   /?show=r3                  highlight r3 on the timeline
//   /?book=1&kind=hosts&count=1&start=%2B3h&duration=1h&template=small&objective=makespan
//       &label=...             fill the booking form with these values and submit it once
//   /reservations/r3           the reservation page
'use strict';

const NS_PER_MS = 1e6;
const REFRESH_MS = 2000;
const TERMINAL = new Set(['done', 'rejected', 'cancelled', 'failed']);

const state = {
  now: 0,            // vrmd's clock, ns
  hosts: [],
  vms: [],
  reservations: [],
  templates: [],
  selected: null,    // reservation id highlighted on the timeline
  spanHours: 6,
  token: '',         // web API token ('' = read-only)
};

// ---------------------------------------------------------------------------------------------
// small helpers

// h('div', {class: 'x', onclick: f}, 'text', child...): builds DOM; strings become text nodes,
// so nothing from the API is ever parsed as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return add(el, ...children);
}

// Appends children to `el`, skipping null / undefined / false (for conditional parts).
function add(el, ...children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The web API token (README: Security), kept in this browser's localStorage. A link may carry
// it as #token=... (the fragment never reaches a server); it is stored and removed from the URL.
const TOKEN_KEY = 'vrm-token';
function apiToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}
function setApiToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token); else localStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage disabled: the token lasts for this page only */ }
  state.token = token;
  const input = document.getElementById('token');
  if (input && input.value !== token) input.value = token;
}
function takeTokenFromUrl() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (!m) return;
  setApiToken(decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search);
}

// The link to the token owner's calendar feed (README: Calendar feeds), shown once known.
async function updateFeedLink() {
  const a = document.getElementById('nav-ics');
  const r = (state.token || apiToken()) ? await api('GET', '/api/calendar-link') : { ok: false };
  a.hidden = !r.ok;
  if (r.ok) a.href = r.data.url;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  const token = state.token || apiToken();
  if (token) init.headers['Authorization'] = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = { error: 'internal', message: 'not JSON' }; }
  return { status: res.status, ok: res.ok, data };
}

const pad2 = (n) => String(n).padStart(2, '0');
function dateOf(ns) { return new Date(ns / NS_PER_MS); }
function clockText(ns) {
  const d = dateOf(ns);
  return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
}
function dayText(ns) {
  const d = dateOf(ns);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}
function timeText(ns) {
  if (!ns) return '–';
  return dayText(ns) === dayText(state.now) ? clockText(ns) : `${dayText(ns)} ${clockText(ns)}`;
}
function durationText(seconds) {
  const s = Math.abs(seconds);
  if (s === 0) return '0 s';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1).replace(/\.0$/, '')} h`;
  return `${(s / 86400).toFixed(1).replace(/\.0$/, '')} d`;
}
function relText(ns) {
  const s = (ns - state.now) / 1e9;
  return s >= 0 ? `in ${durationText(s)}` : `${durationText(s)} ago`;
}
function bytesText(b) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(b >= 100 || i === 0 ? 0 : 1).replace(/\.0$/, '')} ${units[i]}`;
}
function plural(n, word) { return `${n} ${word}${n === 1 ? '' : 's'}`; }
function badge(st) { return h('span', { class: `badge state-${st}` }, st); }
function isoToNs(text) { const t = Date.parse(text); return Number.isNaN(t) ? 0 : t * NS_PER_MS; }
function resStart(r) { return r.start_ns; }
function resEnd(r) { return r.end_ns; }
function lssOf(r) { return r.plan && r.plan.latest_safe_start_ns ? r.plan.latest_safe_start_ns : 0; }

// ---------------------------------------------------------------------------------------------
// data

async function refresh() {
  try {
    const [now, hosts, vms, rs] = await Promise.all([
      api('GET', '/api/now'), api('GET', '/api/hosts'), api('GET', '/api/vms'),
      api('GET', '/api/reservations')]);
    for (const r of [now, hosts, vms, rs]) {
      if (!r.ok) throw new Error(r.data && r.data.message ? r.data.message : `HTTP ${r.status}`);
    }
    state.now = now.data.now_ns;
    state.hosts = hosts.data;
    state.vms = vms.data;
    state.reservations = rs.data;
    document.getElementById('link-dot').className = 'dot up';
    document.getElementById('clock').textContent = `vrmd ${dayText(state.now)} ${clockText(state.now)} UTC`;
  } catch (e) {
    document.getElementById('link-dot').className = 'dot down';
    document.getElementById('clock').textContent = `vrmd unreachable: ${e.message}`;
  }
  render();
}

function render() {
  const m = location.pathname.match(/^\/reservations\/([A-Za-z0-9._-]+)$/);
  document.getElementById('calendar-view').hidden = !!m;
  document.getElementById('reservation-view').hidden = !m;
  if (m) renderReservationPage(m[1]);
  else {
    renderTimeline();
    renderList();
  }
  document.getElementById('foot').textContent =
    `${plural(state.hosts.length, 'host')} · ${plural(state.vms.length, 'VM')} · ` +
    `${plural(state.reservations.length, 'reservation')}` +
    ' · data from /api/ (the same JSON as vrmctl --json)';
}

// ---------------------------------------------------------------------------------------------
// timeline

function viewWindow() {
  const span = state.spanHours * 3600e9;
  const from = state.now - span * 0.12;
  return { from, to: from + span, span };
}

function pct(ns, w) { return ((ns - w.from) / w.span) * 100; }

// Places `el` over [a, b) of the window; false when it is outside.
function place(el, a, b, w) {
  if (b <= w.from || a >= w.to) return false;
  const left = Math.max(0, pct(a, w));
  const right = Math.min(100, pct(b, w));
  el.style.left = `${left}%`;
  el.style.width = `${Math.max(right - left, 0.15)}%`;
  return true;
}

function tickStepHours(spanHours) {
  if (spanHours <= 2) return 0.25;
  if (spanHours <= 6) return 0.5;
  if (spanHours <= 24) return 2;
  return 6;
}

function renderTimeline() {
  const root = document.getElementById('timeline');
  const w = viewWindow();
  root.replaceChildren();
  if (!state.now) return;

  // axis
  const axis = h('div', { class: 'tl-track-axis' });
  const step = tickStepHours(state.spanHours) * 3600e9;
  for (let t = Math.ceil(w.from / step) * step; t < w.to; t += step) {
    const midnight = clockText(t) === '00:00:00';
    const label = midnight ? dayText(t).slice(5) : clockText(t).slice(0, 5);
    axis.append(h('div', { class: `tick${midnight ? ' day' : ''}`, style: { left: `${pct(t, w)}%` } },
      label));
  }
  add(root, h('div', { class: 'tl-axis' }, h('div', { class: 'tl-label' }, 'host'), axis));

  if (!state.hosts.length) {
    add(root, h('div', { class: 'empty' }, 'No agent has registered yet.'));
    return;
  }

  const used = {};
  for (const v of state.vms) {
    const u = used[v.host] || (used[v.host] = { cores: 0, mem: 0, n: 0 });
    u.cores += v.cpu_cores; u.mem += v.memory_bytes; u.n++;
  }

  for (const host of state.hosts) {
    const u = used[host.name] || { cores: 0, mem: 0, n: 0 };
    const freeCores = Math.max(0, host.cpu_cores - u.cores);
    const freeMem = Math.max(0, host.memory_bytes - u.mem);
    const memFrac = host.memory_bytes ? freeMem / host.memory_bytes : 0;
    const label = h('div', { class: 'tl-label' },
      h('div', { class: 'host' },
        h('span', { class: `dot ${host.reachable ? 'up' : 'down'}`,
                    title: host.reachable ? 'agent up' : 'agent unreachable' }),
        host.name),
      h('div', { class: 'cap' }, `${plural(u.n, 'VM')} · ${freeCores}/${host.cpu_cores} cores free`),
      h('div', { class: 'cap' },
        `${bytesText(freeMem)} of ${bytesText(host.memory_bytes)} memory free`),
      h('div', { class: 'meter', title: `memory in use ${Math.round((1 - memFrac) * 100)}%` },
        h('i', { style: { width: `${(1 - memFrac) * 100}%` } })));
    const track = h('div', { class: 'tl-track', 'data-host': host.name });

    // Free capacity: today's free memory, except where a dedicated reservation holds the host
    // (from its latest safe start: the host is being emptied, then it is the reservation's).
    const busy = [];
    for (const r of state.reservations) {
      if (r.kind !== 'dedicated' || !r.hosts.includes(host.name)) continue;
      if (r.state === 'rejected' || r.state === 'cancelled' || r.state === 'failed') continue;
      busy.push([lssOf(r) || resStart(r), resEnd(r)]);
    }
    busy.sort((a, b) => a[0] - b[0]);
    let cursor = Math.max(w.from, state.now);
    const freeSegs = [];
    for (const [a, b] of busy) {
      if (a > cursor) freeSegs.push([cursor, a]);
      cursor = Math.max(cursor, b);
    }
    if (cursor < w.to) freeSegs.push([cursor, w.to]);
    for (const [a, b] of freeSegs) {
      const seg = h('div', { class: 'free', title: `free: ${freeCores} cores, ${bytesText(freeMem)}` },
        h('i', { style: { height: `${Math.max(8, memFrac * 100)}%` } }));
      if (place(seg, a, b, w)) track.append(seg);
    }

    for (const r of state.reservations) {
      if (!r.hosts.includes(host.name) || r.state === 'rejected') continue;
      const shared = r.kind === 'shared';
      const lss = lssOf(r);
      if (!shared && lss && lss < resStart(r) && !TERMINAL.has(r.state)) {
        const vac = h('div', {
          class: 'vacate', 'data-id': r.id,
          title: `${r.id}: vacate window — latest safe start ${timeText(lss)}, ` +
                 `start ${timeText(resStart(r))} (${r.plan.moves.length} moves, ${r.plan.strategy})`,
        });
        if (place(vac, lss, resStart(r), w)) track.append(vac);
      }
      const text = shared ? `${r.id} · ${plural(r.vm_count, 'VM')}` :
        `${r.id} · ${r.template}${r.label ? ' · ' + r.label : ''}`;
      const bar = h('div', {
        class: `bar res state-${r.state}${shared ? ' shared' : ''}${state.selected === r.id ? ' selected' : ''}`,
        'data-id': r.id, 'data-state': r.state,
        title: `${r.id} (${r.state}) ${r.owner}: ${timeText(resStart(r))} → ${timeText(resEnd(r))}`,
        onclick: () => { location.href = `/reservations/${encodeURIComponent(r.id)}`; },
      }, text);
      if (place(bar, resStart(r), resEnd(r), w)) track.append(bar);
    }

    // Moves: on the source row (and dashed on the destination row), at their actual times when
    // they ran, else at the planned offsets from the latest safe start.
    for (const r of state.reservations) {
      if (r.kind !== 'dedicated' || r.state === 'rejected') continue;
      const lss = lssOf(r);
      for (const m of r.plan.moves || []) {
        if (m.from !== host.name && m.to !== host.name) continue;
        const st = m.state || 'planned';
        if (st === 'skipped') continue;
        let a = lss + m.start_s * 1e9, b = lss + m.end_s * 1e9;
        if (m.actual_start) a = isoToNs(m.actual_start);
        if (m.actual_end) b = isoToNs(m.actual_end);
        else if (st === 'running') b = Math.max(b, state.now);
        const incoming = m.to === host.name;
        const el = h('div', {
          class: `move ${st}${incoming ? ' incoming' : ''}`, 'data-id': r.id, 'data-vm': m.vm,
          title: `${r.id}: ${m.vm} ${m.from} → ${m.to} (${m.mode}, ${st}) ` +
                 `${timeText(a)} – ${timeText(b)}, ${bytesText(m.transferred_bytes)}`,
        });
        if (place(el, a, b, w)) track.append(el);
      }
    }

    if (state.now >= w.from && state.now < w.to) {
      track.append(h('div', { class: 'now-line', style: { left: `${pct(state.now, w)}%` } }));
    }
    add(root, h('div', { class: 'tl-row' }, label, track));
  }
  // One "now" caption on the first row.
  const first = root.querySelector('.tl-row .now-line');
  if (first) first.append(h('span', {}, 'now'));
}

function renderList() {
  const list = document.getElementById('reservation-list');
  const rs = [...state.reservations].sort((a, b) => {
    const ta = TERMINAL.has(a.state), tb = TERMINAL.has(b.state);
    if (ta !== tb) return ta ? 1 : -1;
    return a.start_ns - b.start_ns;
  });
  list.replaceChildren();
  if (!rs.length) list.append(h('div', { class: 'empty' }, 'No reservations yet.'));
  for (const r of rs) {
    const what = r.kind === 'shared' ? `${r.vm_count} × ${r.template}` :
      `${r.hosts.length ? r.hosts.join(', ') : plural(r.host_count, 'host')} · ${r.template}`;
    list.append(h('a', { class: 'res-item', href: `/reservations/${encodeURIComponent(r.id)}`,
                          'data-id': r.id },
      h('span', { class: 'id' }, r.id),
      h('span', {}, h('div', {}, what + (r.label ? ` · ${r.label}` : '')),
        h('div', { class: 'when' }, `${timeText(r.start_ns)} → ${timeText(r.end_ns)}`)),
      badge(r.state)));
  }
}

// ---------------------------------------------------------------------------------------------
// booking form

function formKind() { return document.querySelector('input[name=kind]:checked').value; }

function updateKind() {
  document.getElementById('count-label').textContent = formKind() === 'hosts' ? 'Hosts' : 'VMs';
}

async function loadTemplates() {
  const res = await api('GET', '/api/templates');
  state.templates = res.ok ? res.data : [];
  const sel = document.getElementById('template');
  sel.replaceChildren(...state.templates.map((t) =>
    h('option', { value: t.name },
      `${t.name} · ${t.cpu_cores}c/${bytesText(t.memory_bytes)}`)));
}

async function book(dryRun) {
  const count = parseInt(document.getElementById('count').value, 10);
  const body = {
    start: document.getElementById('start').value.trim(),
    duration: document.getElementById('duration').value.trim(),
    template: document.getElementById('template').value,
    objective: document.getElementById('objective').value,
  };
  const label = document.getElementById('label').value.trim();
  if (label) body.label = label;
  const sshKey = document.getElementById('ssh-key').value.trim();
  if (sshKey) body.ssh_public_key = sshKey;
  if (formKind() === 'hosts') body.hosts = Number.isFinite(count) ? count : 0;
  else body.vms = Number.isFinite(count) ? count : 0;
  if (dryRun) body.dry_run = true;
  const buttons = document.querySelectorAll('#book-form button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const res = await api('POST', '/api/reservations', body);
    showDecision(res, dryRun);
    if (res.data && res.data.id && !dryRun && res.data.state !== 'rejected') {
      state.selected = res.data.id;
    }
  } catch (e) {
    showDecision({ status: 0, data: { error: 'unavailable', message: e.message } }, dryRun);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
  await refresh();
}

function showDecision(res, dryRun) {
  const box = document.getElementById('decision');
  box.hidden = false;
  box.replaceChildren();
  const r = res.data || {};
  if (r.state === 'admitted' || (r.state && r.state !== 'rejected' && !r.error)) {
    box.className = 'decision admitted';
    box.dataset.state = 'admitted';
    box.dataset.id = r.id;
    const lss = lssOf(r);
    add(box, 
      h('div', { class: 'title' }, dryRun ? 'Would be admitted (nothing booked)' : `Admitted: ${r.id}`),
      h('dl', {},
        h('dt', {}, 'hosts'), h('dd', {}, r.hosts.join(', ') || '–'),
        h('dt', {}, 'window'), h('dd', {}, `${timeText(r.start_ns)} → ${timeText(r.end_ns)}`),
        lss ? [h('dt', {}, 'latest safe start'), h('dd', {}, `${timeText(lss)} (${relText(lss)})`)] : null,
        r.kind === 'dedicated' ? [h('dt', {}, 'vacate plan'),
          h('dd', {}, `${plural(r.plan.moves.length, 'move')}, ${r.plan.strategy || '–'}, ` +
                      `makespan ${durationText(r.plan.makespan_s)}`)] : null),
      dryRun ? null : h('a', { href: `/reservations/${encodeURIComponent(r.id)}` }, 'open the reservation →'));
  } else if (r.state === 'rejected') {
    box.className = 'decision rejected';
    box.dataset.state = 'rejected';
    box.dataset.id = r.id || '';
    const efs = r.earliest_feasible_start_ns || 0;
    add(box, 
      h('div', { class: 'title' }, 'Rejected'),
      h('div', { class: 'reason' }, r.reason),
      efs ? h('dl', {}, h('dt', {}, 'earliest feasible start'),
                     h('dd', { id: 'earliest-feasible-start' }, `${timeText(efs)} (${relText(efs)})`))
          : null,
      efs ? h('button', { type: 'button', class: 'secondary', style: { marginTop: '8px' },
                          onclick: () => { document.getElementById('start').value = r.earliest_feasible_start; } },
              'Use the earliest feasible start') : null);
  } else {
    box.className = 'decision error';
    box.dataset.state = 'error';
    add(box, h('div', { class: 'title' }, `Not submitted (${r.error || 'HTTP ' + res.status})`),
               h('div', {}, r.message || ''));
  }
}

// Fills the form from ?book=1&... and submits it once (then drops the parameters, so a reload
// does not book again).
async function bookFromQuery(params) {
  if (!params.get('book')) return;
  const kind = params.get('kind') === 'vms' ? 'vms' : 'hosts';
  document.querySelector(`input[name=kind][value=${kind}]`).checked = true;
  updateKind();
  const set = (id, key) => { if (params.has(key)) document.getElementById(id).value = params.get(key); };
  set('count', 'count');
  set('start', 'start');
  set('duration', 'duration');
  set('template', 'template');
  set('objective', 'objective');
  set('label', 'label');
  params.delete('book');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : ''));
  document.getElementById('submit').click();
}

// ---------------------------------------------------------------------------------------------
// reservation page

function renderReservationPage(id) {
  const root = document.getElementById('reservation-detail');
  const r = state.reservations.find((x) => x.id === id);
  root.replaceChildren();
  add(root, h('a', { href: '/' }, '← calendar'));
  if (!r) {
    add(root, h('div', { class: 'empty' }, state.now ? `No reservation ${id}.` : 'Loading…'));
    return;
  }
  const lss = lssOf(r);
  const cancel = TERMINAL.has(r.state) ? null : h('button', {
    class: 'danger', type: 'button',
    onclick: async (e) => {
      e.target.disabled = true;
      const res = await api('POST', `/api/reservations/${encodeURIComponent(r.id)}/cancel`);
      if (!res.ok) alert(res.data.message || `HTTP ${res.status}`);
      refresh();
    },
  }, 'Cancel reservation');
  add(root, 
    h('div', { class: 'detail-head', style: { marginTop: '10px' } },
      h('h2', {}, r.id), badge(r.state), h('span', { style: { marginLeft: 'auto' } }, cancel)),
    r.label ? h('div', {}, r.label) : null,
    r.reason ? h('div', { class: 'reason' }, r.reason) : null,
    r.at_risk ? h('div', { class: 'reason at-risk' }, `At risk: ${r.risk_reason}`) : null,
    h('div', { class: 'facts' },
      fact('owner', r.owner),
      fact('kind', r.kind === 'shared' ? `shared, ${r.vm_count} VMs` :
        `dedicated, ${plural(r.host_count, 'host')}`),
      fact('template', r.template),
      fact('window', `${timeText(r.start_ns)} → ${timeText(r.end_ns)}`),
      fact('hosts', r.hosts.join(', ') || '–'),
      lss ? fact('latest safe start', `${timeText(lss)} (${relText(lss)})`) : null,
      r.earliest_feasible_start_ns ? fact('earliest feasible start', timeText(r.earliest_feasible_start_ns)) : null,
      r.kind === 'dedicated' && lss ? fact('plan',
        `${r.plan.strategy}, ${r.plan.model} model, makespan ${durationText(r.plan.makespan_s)}, ` +
        `clone ${durationText(r.plan.clone_time_s)}, margin ${durationText(r.plan.margin_s)}`) : null,
      fact('created', timeText(isoToNs(r.created)))));

  if (r.plan.moves.length) {
    const span = Math.max(r.plan.makespan_s, 1e-9);
    add(root, h('h3', {}, 'Vacate plan'), h('table', {},
      h('thead', {}, h('tr', {}, ['vm', 'from → to', 'mode', 'batch', 'planned', 'actual', 'bytes', 'state',
        'timeline (planned above, actual below)'].map((x) => h('th', {}, x)))),
      h('tbody', {}, r.plan.moves.map((m) => {
        const aStart = m.actual_start ? (isoToNs(m.actual_start) - lss) / 1e9 : null;
        const aEnd = m.actual_end ? (isoToNs(m.actual_end) - lss) / 1e9 : null;
        const g = h('div', { class: 'gbar' },
          h('i', { style: { left: `${(m.start_s / span) * 100}%`,
                            width: `${Math.max(((m.end_s - m.start_s) / span) * 100, 1)}%` } }));
        if (aStart !== null) {
          const end = aEnd !== null ? aEnd : (state.now - lss) / 1e9;
          const l = Math.min(Math.max(aStart / span, 0), 1) * 100;
          g.append(h('i', { class: 'actual', style: {
            left: `${l}%`, width: `${Math.max(Math.min(((end - aStart) / span) * 100, 100 - l), 1)}%` } }));
        }
        return h('tr', {},
          h('td', { class: 'mono' }, m.vm), h('td', {}, `${m.from} → ${m.to}`), h('td', {}, m.mode),
          h('td', {}, m.batch), h('td', {}, `+${durationText(m.start_s)} – +${durationText(m.end_s)}`),
          h('td', {}, aStart !== null ? `+${durationText(aStart)} – ${aEnd !== null ? '+' + durationText(aEnd) : '…'}` : '–'),
          h('td', {}, bytesText(m.transferred_bytes)), h('td', {}, m.state || 'planned'),
          h('td', { class: 'gantt' }, g));
      }))));
  }

  add(root, h('h3', {}, 'Handles'));
  if (r.handles.length) {
    add(root, h('table', {},
      h('thead', {}, h('tr', {}, ['vm', 'host', 'address', 'account', 'connect'].map((x) => h('th', {}, x)))),
      h('tbody', {}, r.handles.map((c) => h('tr', {},
        h('td', { class: 'mono' }, c.vm), h('td', {}, c.host),
        h('td', { class: 'mono', title: c.address_source ? `address from ${c.address_source}` : '' },
          c.port ? `${c.address}:${c.port}` : c.address),
        h('td', { class: 'mono' }, c.account),
        h('td', { class: 'mono ssh' }, c.ssh || '–'))))));
  } else {
    add(root, h('div', { class: 'when' },
      r.clones.length ? `${r.clones.length} clone(s): ${r.clones.map((c) => `${c.vm} ${c.state}`).join(', ')}`
        : 'None yet: handles appear when the reservation is ready.'));
  }

  add(root, h('h3', {}, 'Events'), h('table', {},
    h('tbody', {}, r.events.map((e) => h('tr', {},
      h('td', { class: 'mono', style: { width: '190px' } }, timeText(isoToNs(e.time))),
      h('td', { style: { width: '100px' } }, badge(e.state)), h('td', {}, e.message))))));
}

function fact(name, value) { return h('div', {}, h('span', {}, name), value); }

// ---------------------------------------------------------------------------------------------
// start

async function main() {
  takeTokenFromUrl();
  setApiToken(state.token || apiToken());
  document.getElementById('token').addEventListener('change', (e) => {
    setApiToken(e.target.value.trim());
    refresh();
    updateFeedLink();
  });
  updateFeedLink();
  const params = new URLSearchParams(location.search);
  const span = parseFloat(params.get('span'));
  if (span > 0) {
    state.spanHours = span;
    const sel = document.getElementById('span');
    if (![...sel.options].some((o) => o.value === String(span))) {
      sel.append(h('option', { value: span }, `${span} h`));
    }
    sel.value = String(span);
  }
  state.selected = params.get('show');
  document.getElementById('span').addEventListener('change', (e) => {
    state.spanHours = parseFloat(e.target.value);
    render();
  });
  document.querySelectorAll('input[name=kind]').forEach((el) => el.addEventListener('change', updateKind));
  document.getElementById('book-form').addEventListener('submit', (e) => { e.preventDefault(); book(false); });
  document.getElementById('dry-run').addEventListener('click', () => book(true));
  await loadTemplates();
  await refresh();
  await bookFromQuery(params);
  const loop = async () => { await refresh(); setTimeout(loop, REFRESH_MS); };
  setTimeout(loop, REFRESH_MS);
}

main();
