// Workflows: the graph of a workflow template or of a workflow job (its
// nodes with their status, its edges with their kind), the list and page
// of workflow templates with their launch button. The graph is laid out in
// layers — a node one layer right of its deepest parent — and drawn in
// SVG; a table beside it says the same for the keyboard and small screens.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const EDGE_KINDS = ['success', 'failure', 'always'];
const NODE_W = 170, NODE_H = 54, GAP_X = 60, GAP_Y = 18, PAD = 8;

// svgEl builds an SVG element (h builds HTML ones).
function svgEl(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// layers places each node: its layer is one more than its deepest
// parent's (roots are layer 0); within a layer, nodes keep their order.
function layers(nodes) {
  const byId = new Map(nodes.map(n => [n.id, n]));
  const depth = new Map();
  const visit = (id, seen) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0; // a loop: the API refuses them, draw anyway
    seen.add(id);
    let d = 0;
    for (const p of nodes) {
      if (EDGE_KINDS.some(k => (p[k] || []).includes(id))) d = Math.max(d, visit(p.id, seen) + 1);
    }
    depth.set(id, d);
    return d;
  };
  const cols = [];
  for (const n of nodes) {
    const d = visit(n.id, new Set());
    (cols[d] = cols[d] || []).push(n.id);
  }
  const pos = new Map();
  cols.forEach((col, x) => col.forEach((id, y) => pos.set(id, { x: PAD + x * (NODE_W + GAP_X), y: PAD + y * (NODE_H + GAP_Y) })));
  const rows = Math.max(1, ...cols.map(c => (c || []).length));
  return { pos, byId, width: 2 * PAD + cols.length * NODE_W + (cols.length - 1) * GAP_X, height: 2 * PAD + rows * NODE_H + (rows - 1) * GAP_Y };
}

// workflowGraph draws nodes (with status and state when they are a
// workflow job's) as an SVG figure.
function workflowGraph(nodes) {
  const { pos, width, height } = layers(nodes);
  const defs = svgEl('defs', {}, EDGE_KINDS.map(k => svgEl('marker', { id: 'arrow-' + k, class: 'edge-' + k, viewBox: '0 0 10 10', refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svgEl('path', { d: 'M 0 0 L 10 5 L 0 10 z' }))));
  const edges = svgEl('g', {});
  for (const n of nodes) {
    for (const k of EDGE_KINDS) {
      for (const c of n[k] || []) {
        const a = pos.get(n.id), b = pos.get(c);
        if (!a || !b) continue;
        const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
        edges.append(svgEl('path', { class: 'edge edge-' + k, 'data-edge': n.id + '>' + c, 'data-kind': k,
          d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, 'marker-end': 'url(#arrow-' + k + ')' },
        svgEl('title', {}, `${n.id} → ${c} on ${k}`)));
      }
    }
  }
  const boxes = svgEl('g', {});
  for (const n of nodes) {
    const p = pos.get(n.id);
    const status = n.status || 'template';
    const g = svgEl('g', { class: 'wf-node st-' + status, 'data-node': n.id, 'data-status': n.status || '', 'data-state': n.state || '',
      transform: `translate(${p.x} ${p.y})` },
    svgEl('rect', { width: NODE_W, height: NODE_H, rx: 6 }),
    svgEl('text', { x: 8, y: 17, class: 'wf-id' }, n.id),
    svgEl('text', { x: 8, y: 32 }, n.template ? 'template ' + n.template : 'workflow ' + n.workflow),
    n.status ? svgEl('text', { x: 8, y: 47 }, n.status + (n.state ? ' · ' + n.state : '')) : null,
    svgEl('title', {}, n.id + (n.status ? ': ' + n.status : '')));
    // A node whose job exists links to it.
    boxes.append(n.state ? svgEl('a', { href: '#/jobs/' + uuidOf(n.job) }, g) : g);
  }
  const svg = svgEl('svg', { class: 'wf-graph', role: 'img', 'aria-label': 'Workflow graph', viewBox: `0 0 ${width} ${height}`,
    width, height }, defs, edges, boxes);
  return h('figure', { class: 'card wf' }, h('div', { class: 'scroll' }, svg),
    h('figcaption', { class: 'muted legend' }, h('span', { class: 'key edge-success' }, '— on success'), ' ',
      h('span', { class: 'key edge-failure' }, '- - on failure'), ' ', h('span', { class: 'key edge-always' }, '··· always')));
}

// nodeTable lists the nodes (with their status and job when they are a
// workflow job's); actions(n) may add a button per node.
function nodeTable(nodes, actions) {
  const ran = nodes.some(n => n.status);
  const t = h('table', { id: 'nodes' }, h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Runs'),
    ran ? h('th', {}, 'Status') : null, ran ? h('th', {}, 'Job') : null, h('th', { class: 'wide' }, 'Then'),
    actions ? h('th', {}, '') : null)), h('tbody'));
  for (const n of nodes) {
    const then = EDGE_KINDS.filter(k => (n[k] || []).length).map(k => k + ': ' + n[k].join(', ')).join('; ');
    t.tBodies[0].append(h('tr', { 'data-node': n.id, 'data-status': n.status || '' },
      h('td', {}, n.id),
      h('td', {}, n.template ? h('a', { href: '#/templates/' + encodeURIComponent(n.template) }, n.template)
        : h('a', { href: '#/workflows/' + encodeURIComponent(n.workflow) }, 'workflow ' + n.workflow)),
      ran ? h('td', {}, n.status) : null,
      ran ? h('td', {}, n.state ? [stateBadge(n.state), ' ', h('a', { href: '#/jobs/' + uuidOf(n.job) }, uuidOf(n.job).slice(0, 8))] : '') : null,
      h('td', { class: 'wide' }, then),
      actions ? h('td', {}, actions(n)) : null));
  }
  return h('div', { class: 'scroll' }, t);
}

// workflowJobSection shows the nodes of workflow job j (from GET
// /jobs/{id}/nodes), with a "relaunch from here" button per node once the
// job is final, for those who may relaunch it.
async function workflowJobSection(j) {
  const id = uuidOf(j.id);
  const out = await api('GET', '/jobs/' + id + '/nodes');
  const mayRelaunch = FINAL.has(j.state) && holds('workflow', j['workflow-template'], 'execute');
  const from = n => mayRelaunch ? h('button', { type: 'button', class: 'secondary', 'data-from': n.id, onclick: async ev => {
    ev.target.disabled = true;
    try {
      const r = await api('POST', '/jobs/' + id + '/relaunch' + params({ from: n.id }));
      location.hash = '#/jobs/' + uuidOf(r.job.id);
    } catch (e) { report(e); ev.target.disabled = false; }
  } }, 'Relaunch from here') : null;
  return [h('h2', {}, 'Workflow ', j['workflow-template'] ? h('a', { href: '#/workflows/' + encodeURIComponent(j['workflow-template']) }, j['workflow-template']) : ''),
    workflowGraph(out.nodes), nodeTable(out.nodes, mayRelaunch ? from : null)];
}

listPage('workflows', 'Workflows', [
  { label: 'Nodes', value: o => (o.nodes || []).length },
  { label: 'Description', value: o => o.description || '', wide: true },
  { label: 'Updated', value: o => fmtTime(o.updated), wide: true },
]);

Pages.push({
  match: r => r.parts[0] === 'workflows' && r.parts.length === 2,
  render: async (main, r) => {
    const name = r.parts[1];
    const t = await api('GET', '/workflows/' + encodeURIComponent(name));
    const launch = h('button', { type: 'button', id: 'launch', onclick: async ev => {
      ev.target.disabled = true;
      try {
        const out = await api('POST', '/workflows/' + encodeURIComponent(name) + '/launch');
        location.hash = '#/jobs/' + uuidOf(out.job.id);
      } catch (e) { report(e); ev.target.disabled = false; }
    } }, 'Launch');
    main.append(h('h1', {}, 'Workflow ' + t.name),
      h('section', { class: 'card' }, fields([['Description', t.description], ['Nodes', String((t.nodes || []).length)],
        ['Created', fmtTime(t.created)], ['Updated', fmtTime(t.updated)]])),
      h('div', { class: 'actions' }, launch),
      workflowGraph(t.nodes || []), nodeTable(t.nodes || []), recentJobs({ workflow: t.name }));
  },
});
