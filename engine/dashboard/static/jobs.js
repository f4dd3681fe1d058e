// The Jobs page (a live, filtered, paged list; sliced containers expand
// into their slices) and the page of one job (its state, log followed
// live, events, host recap, cancel and relaunch).
'use strict';

const STATES = ['', 'PENDING', 'QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'];
const LAUNCH_TYPES = ['', 'manual', 'relaunch', 'scheduled', 'dependency', 'workflow', 'distributor', 'fanout', 'callback', 'retry'];
const FINAL = new Set(['SUCCESS', 'FAILED', 'CANCELED']);

function progressBar(p) {
  return h('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': p || 0, 'aria-valuemin': 0, 'aria-valuemax': 100 },
    h('span', { style: 'width:' + (p || 0) + '%' }));
}

function jobRow(j, extra) {
  const label = j['slice-number'] ? 'slice ' + j['slice-number'] + '/' + j['slice-count']
    : extra && extra.node ? 'node ' + j['workflow-node'] : uuidOf(j.id).slice(0, 8);
  const tr = h('tr', { class: extra && extra.slice ? 'slice' : extra && extra.node ? 'node' : '', 'data-job': uuidOf(j.id), 'data-state': j.state },
    h('td', {}, extra && extra.toggle, h('a', { href: '#/jobs/' + uuidOf(j.id) }, label)),
    h('td', {}, stateBadge(j.state)),
    h('td', {}, j.template ? h('a', { href: '#/templates/' + encodeURIComponent(j.template) }, j.template)
      : j['workflow-template'] ? h('a', { href: '#/workflows/' + encodeURIComponent(j['workflow-template']) }, 'workflow ' + j['workflow-template']) : ''),
    h('td', { class: 'wide' }, j.action),
    h('td', { class: 'wide' }, j['launch-type'] || ''),
    h('td', { class: 'wide' }, fmtTime(j.created)),
    h('td', {}, h('span', { class: 'meter' }, progressBar(j.progress))),
    h('td', { class: 'wide' }, j.executor || ''));
  return tr;
}

function jobTable() {
  return h('table', {}, h('thead', {}, h('tr', {},
    h('th', {}, 'Job'), h('th', {}, 'State'), h('th', {}, 'Template'), h('th', { class: 'wide' }, 'Action'),
    h('th', { class: 'wide' }, 'Launch'), h('th', { class: 'wide' }, 'Created'), h('th', {}, 'Progress'),
    h('th', { class: 'wide' }, 'Executor'))), h('tbody'));
}

function select(id, label, options, value) {
  const s = h('select', { id, name: id }, options.map(o => h('option', { value: o, selected: o === value }, o || 'any')));
  return [h('label', { for: id }, label), s];
}

Pages.push({
  match: r => r.parts[0] === 'jobs' && r.parts.length === 1,
  render: async (main, r) => {
    const q = r.query;
    const [stateL, state] = select('f-state', 'State', STATES, q.get('state') || '');
    const [ltL, lt] = select('f-launch', 'Launch type', LAUNCH_TYPES, q.get('launch-type') || '');
    const tpl = h('input', { id: 'f-template', name: 'template', value: q.get('template') || '', size: 14 });
    const act = h('input', { id: 'f-action', name: 'action', value: q.get('action') || '', size: 14 });
    const search = h('input', { id: 'f-search', name: 'search', type: 'search', value: q.get('search') || '', size: 22,
      placeholder: 'id, template, message, log…', maxlength: 200 });
    // The time filter: jobs created since a local time (the API takes RFC 3339).
    const localValue = iso => { if (!iso) return ''; const d = new Date(iso); return isNaN(d) ? '' : new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };
    const since = h('input', { id: 'f-since', name: 'since', type: 'datetime-local', value: localValue(q.get('since')) });
    const form = h('form', { class: 'filters', 'aria-label': 'Filters', role: 'search' },
      h('div', {}, h('label', { for: 'f-search' }, 'Search'), search),
      h('div', {}, stateL, state), h('div', {}, h('label', { for: 'f-template' }, 'Template'), tpl),
      h('div', {}, h('label', { for: 'f-action' }, 'Action'), act), h('div', {}, ltL, lt),
      h('div', {}, h('label', { for: 'f-since' }, 'Created since'), since),
      h('button', { type: 'submit' }, 'Filter'));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      location.hash = '#/jobs' + params({ search: search.value.trim(), state: state.value, template: tpl.value.trim(), action: act.value.trim(), 'launch-type': lt.value,
        since: since.value ? new Date(since.value).toISOString() : '' });
    });
    const table = jobTable();
    const body = table.querySelector('tbody');
    const cursors = [''];
    const prev = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Newer');
    const next = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Older');
    const where = h('span', { class: 'muted' });
    const note = h('p', { class: 'muted' });
    const expanded = new Set();
    main.append(h('h1', {}, 'Jobs'), form, h('div', { class: 'scroll' }, table), h('div', { class: 'pager' }, prev, next, where), note);
    let nextCursor = '';
    const filter = { search: q.get('search'), state: q.get('state'), template: q.get('template'), action: q.get('action'), 'launch-type': q.get('launch-type'), since: q.get('since') };
    const load = async () => {
      const page = await api('GET', '/jobs' + params({ ...filter, limit: 20, cursor: cursors[cursors.length - 1] }));
      nextCursor = page.next || '';
      const items = page.items || [];
      const onPage = new Set(items.map(j => j.id));
      const rows = [];
      for (const j of items) {
        if (j['parent-job'] && onPage.has(j['parent-job'])) continue; // shown under its container
        let toggle = null;
        if (j.sliced || j.workflow) {
          const open = expanded.has(j.id);
          toggle = h('button', { type: 'button', class: 'link', 'aria-expanded': open ? 'true' : 'false',
            'aria-label': (open ? 'Hide' : 'Show') + (j.workflow ? ' the nodes of ' : ' the slices of ') + uuidOf(j.id),
            onclick: () => { open ? expanded.delete(j.id) : expanded.add(j.id); load().catch(report); } }, open ? '▾' : '▸');
        }
        rows.push(jobRow(j, { toggle }));
        if (j.sliced && expanded.has(j.id)) {
          const sl = await api('GET', '/jobs' + params({ 'slices-of': uuidOf(j.id), limit: 100 }));
          for (const s of (sl.items || []).sort((a, b) => a['slice-number'] - b['slice-number'])) rows.push(jobRow(s, { slice: true }));
        }
        if (j.workflow && expanded.has(j.id)) {
          // Node jobs in graph order; those not made yet are not listed.
          const order = (j.workflow.nodes || []).map(n => n.id);
          const nl = await api('GET', '/jobs' + params({ 'slices-of': uuidOf(j.id), limit: 100 }));
          for (const n of (nl.items || []).sort((a, b) => order.indexOf(a['workflow-node']) - order.indexOf(b['workflow-node']))) rows.push(jobRow(n, { node: true }));
        }
      }
      put(body, ...rows);
      if (rows.length === 0) body.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, filter.search ? 'No job matches “' + filter.search + '”.' : 'No job matches.')));
      prev.disabled = cursors.length <= 1;
      next.disabled = !nextCursor;
      where.textContent = 'page ' + cursors.length + ' · updated ' + new Date().toLocaleTimeString();
      note.textContent = page['history-error'] ? 'Live jobs only: ' + page['history-error'] : '';
    };
    prev.addEventListener('click', () => { cursors.pop(); load().catch(report); });
    next.addEventListener('click', () => { if (nextCursor) { cursors.push(nextCursor); load().catch(report); } });
    every(2000, load);
  },
});

// canCancel and canRelaunch mirror the API's rules, to show only the
// buttons that can work; the API decides.
function canCancel(j) {
  return isAdmin() || j['created-by'] === 'user/' + me.user.name ||
    (j.template && holds('template', j.template, 'execute')) ||
    (j.workflow && j['workflow-template'] && holds('workflow', j['workflow-template'], 'execute'));
}
function canRelaunch(j) {
  if (j.workflow) return j['workflow-template'] ? holds('workflow', j['workflow-template'], 'execute') : isAdmin();
  return j.template ? holds('template', j.template, 'execute') : isAdmin();
}
// canRetry: a FAILED job that is not a workflow, fan-out or update run
// (the API says why when it refuses the rest: a gone snapshot, …).
function canRetry(j) {
  return j.state === 'FAILED' && !j.workflow && !j['fanout-group'] && j['launch-type'] !== 'dependency' &&
    (j.template ? holds('template', j.template, 'execute') : isAdmin());
}

function hostRecap(s) {
  if (!s) return null;
  const t = h('table', {}, h('thead', {}, h('tr', {}, ['Host', 'ok', 'changed', 'failed', 'unreachable', 'skipped'].map(x => h('th', {}, x)))), h('tbody'));
  for (const [host, c] of Object.entries(s['per-host'] || {}).sort()) {
    t.tBodies[0].append(h('tr', {}, h('td', {}, host), h('td', {}, c.ok || 0), h('td', {}, c.changed || 0),
      h('td', {}, c.failed || 0), h('td', {}, c.unreachable || 0), h('td', {}, c.skipped || 0)));
  }
  return h('section', { class: 'card' }, h('h2', {}, 'Host recap'),
    h('p', {}, `${s.hosts} hosts: ${s.ok} ok, ${s.changed} changed, ${s.failed} failed, ${s.unreachable} unreachable, ${s.skipped} skipped`),
    h('div', { class: 'scroll' }, t), s.truncated ? h('p', { class: 'muted' }, 'Some hosts are left out.') : null);
}

// artifactsSection shows what the action returned (a playbook's set_stats
// data): each key with its value, as text or as JSON.
function artifactsSection(a, trimmed) {
  const note = trimmed && /artifacts/.test(trimmed) ? h('p', { class: 'muted' }, trimmed) : null;
  if (!a || typeof a !== 'object' || Object.keys(a).length === 0) return note ? h('section', { class: 'card', id: 'artifacts' }, h('h2', {}, 'Artifacts'), note) : null;
  const t = h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Value'))), h('tbody'));
  for (const k of Object.keys(a).sort()) {
    const v = a[k];
    t.tBodies[0].append(h('tr', { 'data-artifact': k }, h('td', {}, k),
      h('td', {}, typeof v === 'string' ? v : h('code', {}, JSON.stringify(v)))));
  }
  return h('section', { class: 'card', id: 'artifacts' }, h('h2', {}, 'Artifacts'), h('div', { class: 'scroll' }, t), note);
}

Pages.push({
  match: r => r.parts[0] === 'jobs' && r.parts.length === 2,
  render: async (main, r) => {
    const id = r.parts[1];
    const title = h('h1', {}, 'Job ' + id);
    const buttons = h('div', { class: 'actions' });
    const info = h('section', { class: 'card' });
    const slices = h('section');
    const graph = h('section', { id: 'workflow' });
    const recap = h('div');
    const log = h('pre', { class: 'log', id: 'log', tabindex: 0, 'aria-label': 'Log' });
    const events = h('section');
    main.append(title, buttons, info, graph, slices, recap, h('h2', {}, 'Log'), log, events);

    let last = null;
    const act = (label, cls, path) => h('button', { type: 'button', class: cls, id: label.toLowerCase(), onclick: async ev => {
      ev.target.disabled = true;
      try {
        const out = await api('POST', '/jobs/' + id + path);
        if (path === '/relaunch' || path === '/retry') location.hash = '#/jobs/' + uuidOf(out.job.id);
        else { flash(label + ' requested', true); await load(); }
      } catch (e) { report(e); ev.target.disabled = false; }
    } }, label);

    const load = async () => {
      const j = await api('GET', '/jobs/' + id);
      // A workflow's nodes change without its own document changing.
      if (j.workflow) put(graph, ...await workflowJobSection(j));
      const changed = !last || last.version !== j.version || last.state !== j.state;
      last = j;
      if (!changed) return;
      const final = FINAL.has(j.state);
      put(info, h('p', {}, stateBadge(j.state), ' ', j['status-message'] || ''), progressBar(j.progress), h('br'),
        fields([
          ['Action', j.action],
          ['Workflow', j['workflow-template'] ? h('a', { href: '#/workflows/' + encodeURIComponent(j['workflow-template']) }, j['workflow-template']) : ''],
          ['Workflow node', j['workflow-node']],
          ['Template', j.template ? h('a', { href: '#/templates/' + encodeURIComponent(j.template) }, j.template) : ''],
          ['Launch type', j['launch-type']], ['Launched by', j['created-by']],
          ['Waiting because', j.state === 'PENDING' ? (j.explanation || 'waiting for the scheduler') : ''],
          ['Created', fmtTime(j.created)], ['Started', fmtTime(j.started)],
          ['Finished', final ? fmtTime(j['time-of-status-change']) : ''],
          ['Duration', j.duration !== undefined ? j.duration.toFixed(1) + ' s' : ''],
          ['Attempt', j.attempt], ['Executor', j.executor], ['Instance group', j['instance-group']],
          ['Inventory', j.inventory], ['Limit', j.limit],
          ['Slice', j['slice-number'] ? j['slice-number'] + ' of ' + j['slice-count'] : ''],
          ['Container', j['parent-job'] ? h('a', { href: '#/jobs/' + uuidOf(j['parent-job']) }, uuidOf(j['parent-job'])) : ''],
          ['Relaunch of', j['relaunch-of'] ? h('a', { href: '#/jobs/' + uuidOf(j['relaunch-of']) }, uuidOf(j['relaunch-of'])) : ''],
          ['Retry of', j['retry-of'] ? h('a', { href: '#/jobs/' + uuidOf(j['retry-of']) }, uuidOf(j['retry-of'])) : ''],
          ['Return code', j['return-code']], ['Source', j.source],
        ]));
      put(buttons,
        !final && canCancel(j) ? act('Cancel', 'danger', '/cancel') : null,
        final && canRelaunch(j) ? act('Relaunch', 'secondary', '/relaunch') : null,
        j.source !== 'elasticsearch' && canRetry(j) ? act('Retry', 'secondary', '/retry') : null);
      const hr = hostRecap(j['host-summary']);
      put(recap, hr, artifactsSection(j.artifacts, j.trimmed));
      if (j.sliced) {
        const sl = await api('GET', '/jobs' + params({ 'slices-of': id, limit: 100 }));
        const t = jobTable();
        for (const s of (sl.items || []).sort((a, b) => a['slice-number'] - b['slice-number'])) t.tBodies[0].append(jobRow(s, { slice: true }));
        put(slices, h('h2', {}, 'Slices'), h('div', { class: 'scroll' }, t));
      }
      if (final) loadEvents().catch(report);
    };

    const loadEvents = async () => {
      const ev = await api('GET', '/jobs/' + id + '/events');
      const items = (ev.items || []).filter(e => e.type === 'action' || e.event);
      if (items.length === 0) { put(events); return; }
      const t = h('table', {}, h('thead', {}, h('tr', {}, ['#', 'Event', 'Host', 'Task', 'Changed'].map(x => h('th', {}, x)))), h('tbody'));
      for (const e of items.slice(0, 500)) {
        t.tBodies[0].append(h('tr', {}, h('td', {}, e.counter || ''), h('td', {}, e.event || e.type), h('td', {}, e.host || ''),
          h('td', {}, e.task || e.message || ''), h('td', {}, e.changed ? 'yes' : '')));
      }
      put(events, h('h2', {}, 'Events'), h('div', { class: 'scroll' }, t));
    };

    // The log follows live over server-sent events; the stream ends with
    // the job.
    const src = new EventSource(API + '/jobs/' + id + '/logs?follow=true');
    src.addEventListener('log', e => {
      const l = JSON.parse(e.data);
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(h('span', { class: l.level }, new Date(l.time).toLocaleTimeString() + ' ' + l.level + ' ' + l.message + '\n'));
      if (atEnd) log.scrollTop = log.scrollHeight;
    });
    src.addEventListener('end', () => src.close());
    src.addEventListener('error', e => { if (e.data) { flash(JSON.parse(e.data).error); } src.close(); });
    onLeave(() => src.close());
    every(1500, load);
  },
});
