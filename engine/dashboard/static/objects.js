// Lists and details of templates, inventories, projects and schedules;
// a template's page launches it with its prompts.
'use strict';

// describe shows an object's fields as a definition list; nested values
// are shown as JSON.
function describe(obj, skip) {
  const pairs = [];
  for (const [k, v] of Object.entries(obj)) {
    if ((skip || []).includes(k)) continue;
    if (v === null || v === undefined || v === '') continue;
    const shown = typeof v === 'object' ? JSON.stringify(v) : (/^(created|updated|next-run|last-run)$/.test(k) ? fmtTime(v) : String(v));
    pairs.push([k, shown]);
  }
  return h('section', { class: 'card' }, fields(pairs));
}

// listPage is the page of a kind of object: a paged table of them.
function listPage(kind, title, columns, opts) {
  Pages.push({
    match: r => r.parts[0] === kind && r.parts.length === 1,
    render: async (main) => {
      const search = h('input', { id: 'search', type: 'search', 'aria-label': 'Search ' + title });
      const table = h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), columns.map(c => h('th', { class: c.wide ? 'wide' : '' }, c.label)))), h('tbody'));
      const cursors = [''];
      let nextCursor = '';
      const prev = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Previous');
      const next = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Next');
      const create = opts && opts.create && opts.create.allowed() ?
        h('a', { class: 'button', id: 'new', href: '#/' + kind + '/+new' }, opts.create.label || 'New') : null;
      main.append(h('h1', {}, title), h('div', { class: 'filters' }, search, create), h('div', { class: 'scroll' }, table), h('div', { class: 'pager' }, prev, next));
      const load = async () => {
        const page = await api('GET', (opts && opts.path || '/' + kind) + params({ limit: 50, search: search.value.trim(), cursor: cursors[cursors.length - 1] }));
        nextCursor = page.next || '';
        put(table.tBodies[0], ...(page.items || []).map(o => h('tr', {},
          h('td', {}, h('a', { href: '#/' + kind + '/' + encodeURIComponent(o.name) }, o.name)),
          columns.map(c => h('td', { class: c.wide ? 'wide' : '' }, c.value(o))))));
        if (!(page.items || []).length) table.tBodies[0].append(h('tr', {}, h('td', { colspan: columns.length + 1, class: 'muted' }, 'None yet.')));
        prev.disabled = cursors.length <= 1;
        next.disabled = !nextCursor;
      };
      search.addEventListener('input', () => { cursors.length = 1; load().catch(report); });
      prev.addEventListener('click', () => { cursors.pop(); load().catch(report); });
      next.addEventListener('click', () => { cursors.push(nextCursor); load().catch(report); });
      await load();
    },
  });
}

listPage('templates', 'Templates', [
  { label: 'Action', value: o => o.action },
  { label: 'Inventory', value: o => o.inventory || '', wide: true },
  { label: 'Slices', value: o => o['slice-count'] || 1, wide: true },
  { label: 'Description', value: o => o.description || '', wide: true },
], { create: { allowed: () => isAdmin(), label: 'New template' } });
listPage('inventories', 'Inventories', [
  { label: 'Kind', value: o => o.kind || '' },
  { label: 'Hosts', value: o => (o.generation && o.generation.hosts) ?? o.hosts ?? '', wide: true },
  { label: 'Description', value: o => o.description || '', wide: true },
]);
listPage('projects', 'Projects', [
  { label: 'Kind', value: o => o.kind || '' },
  { label: 'Revision', value: o => (o.revision || '').slice(0, 12), wide: true },
  { label: 'Description', value: o => o.description || '', wide: true },
]);

function recentJobs(filter) {
  const table = jobTable();
  const sec = h('section', {}, h('h2', {}, 'Recent jobs'), h('div', { class: 'scroll' }, table));
  every(3000, async () => {
    const page = await api('GET', '/jobs' + params({ ...filter, limit: 10 }));
    put(table.tBodies[0], ...(page.items || []).filter(j => !j['parent-job']).map(j => jobRow(j)));
  });
  return sec;
}

Pages.push({
  match: r => r.parts[0] === 'templates' && r.parts.length === 2,
  render: async (main, r) => {
    const name = r.parts[1];
    const t = await api('GET', '/templates/' + encodeURIComponent(name));
    const prompts = t.prompts || [];
    const fieldsOf = launchFields(t);
    const launch = h('button', { type: 'submit', id: 'launch' }, 'Launch');
    const form = h('form', { class: 'card editor', id: 'launch-form', 'aria-label': 'Launch' }, h('h2', {}, 'Launch'),
      prompts.length ? h('fieldset', {}, h('legend', {}, 'Values for this launch (empty: the template\'s)'), fieldsOf.els) : null,
      h('div', { class: 'actions' }, launch));
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      let body;
      try { body = fieldsOf.read(form); } catch (e) { refuse(form, e); return; }
      launch.disabled = true;
      try {
        const out = await api('POST', '/templates/' + encodeURIComponent(name) + '/launch', body);
        location.hash = '#/jobs/' + uuidOf(out.job.id);
      } catch (e) { refuse(form, e); launch.disabled = false; }
    });
    const manage = holds('template', t.name, 'admin') ? h('div', { class: 'actions' },
      h('a', { class: 'button secondary', id: 'edit', href: '#/templates/' + encodeURIComponent(t.name) + '/edit' }, 'Edit'),
      holds('template', t.name, 'execute') ? h('a', { class: 'button secondary', href: '#/schedules/+new' + params({ template: t.name }) }, 'Schedule') : null,
      deleteButton('template ' + t.name, '/templates/' + encodeURIComponent(t.name), '#/templates')) : null;
    main.append(h('h1', {}, 'Template ' + t.name), manage, describe(t, ['name', 'host-config-key']), form, recentJobs({ template: t.name }));
  },
});

for (const kind of ['inventories', 'projects']) {
  Pages.push({
    match: r => r.parts[0] === kind && r.parts.length === 2,
    render: async (main, r) => {
      const name = r.parts[1];
      const o = await api('GET', '/' + kind + '/' + encodeURIComponent(name));
      main.append(h('h1', {}, o.name), describe(o, ['name']));
      if (kind === 'inventories') {
        const hosts = await api('GET', '/inventories/' + encodeURIComponent(name) + '/hosts' + params({ limit: 100 }));
        const t = h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Host'), h('th', {}, 'Enabled'))), h('tbody'));
        for (const x of hosts.items || []) t.tBodies[0].append(h('tr', {}, h('td', {}, x.name), h('td', {}, x.enabled ? 'yes' : 'no')));
        main.append(h('h2', {}, 'Hosts'), h('div', { class: 'scroll' }, t));
      } else {
        const upd = h('button', { type: 'button', id: 'update', onclick: async () => {
          try { const out = await api('POST', '/projects/' + encodeURIComponent(name) + '/update'); location.hash = '#/jobs/' + uuidOf(out.job.id); }
          catch (e) { report(e); }
        } }, 'Update');
        main.append(h('div', { class: 'actions' }, upd));
      }
    },
  });
}

// launches says what a schedule launches, linked.
function launches(l) {
  if (l && l.template) return h('a', { href: '#/templates/' + encodeURIComponent(l.template) }, l.template);
  if (l && l.workflow) return h('a', { href: '#/workflows/' + encodeURIComponent(l.workflow) }, 'workflow ' + l.workflow);
  return 'job ' + ((l && l.job && l.job.action) || '');
}

listPage('schedules', 'Schedules', [
  { label: 'Launches', value: o => launches(o.launch) },
  { label: 'Next run', value: o => o.enabled ? fmtTime((o['next-runs'] || [])[0]) : 'disabled' },
  { label: 'Rule', value: o => o.rule, wide: true },
], { create: { allowed: () => true, label: 'New schedule' } });

Pages.push({
  match: r => r.parts[0] === 'schedules' && r.parts.length === 2,
  render: async (main, r) => {
    const name = r.parts[1];
    const path = '/schedules/' + encodeURIComponent(name);
    const body = h('div');
    main.append(h('h1', {}, 'Schedule ' + name), body);
    const show = sc => {
      const tpl = sc.launch && sc.launch.template;
      const wf = sc.launch && sc.launch.workflow;
      const allowed = tpl ? holds('template', tpl, 'execute') : wf ? holds('workflow', wf, 'execute') : isAdmin();
      const toggle = h('button', { type: 'button', id: 'toggle', class: 'secondary', onclick: async () => {
        try { show(await api('PATCH', path, { enabled: !sc.enabled })); } catch (e) { report(e); }
      } }, sc.enabled ? 'Disable' : 'Enable');
      const last = sc['last-run'];
      put(body,
        h('section', { class: 'card' }, fields([
          ['Enabled', sc.enabled ? 'yes' : 'no'], ['Rule', sc.rule], ['Description', sc.description],
          ['Launches', tpl || wf ? launches(sc.launch) : 'a plain job: ' + JSON.stringify(sc.launch.job)],
          ['Launch values', sc.launch && sc.launch.values ? JSON.stringify(sc.launch.values) : ''],
          ['Catch-up', sc['catch-up'] || 'last'],
          ['Next runs', (sc['next-runs'] || []).map(fmtTime).join(' · ') || 'none'],
          ['Last run', last ? fmtTime(last.done) + (last.error ? ' — ' + last.error : '') : 'none yet'],
          ['Last job', last && last.job ? h('a', { href: '#/jobs/' + uuidOf(last.job) }, uuidOf(last.job)) : ''],
          ['Created', fmtTime(sc.created)], ['Updated', fmtTime(sc.updated)],
        ])),
        allowed ? h('div', { class: 'actions' }, toggle, deleteButton('schedule ' + name, path, '#/schedules')) : null);
    };
    show(await api('GET', path));
  },
});

// Notification templates and credentials: shown, never their secrets
// (the API does not give them).
listPage('notification-templates', 'Notification templates', [
  { label: 'Kind', value: o => o.kind },
  { label: 'Secret', value: o => o['has-secret'] ? 'set' : '', wide: true },
  { label: 'Description', value: o => o.description || '', wide: true },
]);
listPage('credentials', 'Credentials', [
  { label: 'Kind', value: o => o.kind },
  { label: 'Secrets set', value: o => (o['secret-fields'] || []).join(', '), wide: true },
  { label: 'Description', value: o => o.description || '', wide: true },
]);
for (const kind of ['notification-templates', 'credentials']) {
  Pages.push({
    match: r => r.parts[0] === kind && r.parts.length === 2,
    render: async (main, r) => {
      const o = await api('GET', '/' + kind + '/' + encodeURIComponent(r.parts[1]));
      main.append(h('h1', {}, o.name), describe(o, ['name']),
        h('p', { class: 'muted' }, 'Secrets are write-only: the API never shows them.'));
    },
  });
}
