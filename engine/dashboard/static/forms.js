// Forms that create and change objects: templates (create, edit, delete)
// and schedules (create). They send what the API accepts and show its
// refusals in its words, on the field it names. Their pages come first
// (Pages.unshift): '+new' is no object's name, so #/templates/+new is
// never a template's page.
'use strict';

// The fields a launch may override (template.Prompts).
const PROMPTS = ['payload', 'extra-vars', 'inventory', 'limit', 'slice-count', 'forks', 'verbosity', 'diff-mode',
  'check-mode', 'job-tags', 'skip-tags', 'timeout', 'priority', 'instance-groups', 'tags'];

// formField is a labelled input; kind is text, number, json, list, check
// or bool (a choice of yes, no or neither). Its id is opts.prefix ('e-')
// and the field's name.
function formField(id, label, kind, value, opts) {
  opts = opts || {};
  let input;
  const fid = (opts.prefix || 'e-') + id;
  const common = { id: fid, name: id, 'data-field': id, 'aria-describedby': opts.help ? fid + '-help' : null };
  if (kind === 'bool') {
    input = h('select', common, h('option', { value: '' }, opts.placeholder || 'default'),
      h('option', { value: 'true' }, 'yes'), h('option', { value: 'false' }, 'no'));
  } else if (kind === 'json') {
    input = h('textarea', { ...common, rows: 3, spellcheck: 'false', placeholder: opts.placeholder || '{}' });
    input.value = value === undefined || value === null ? '' : JSON.stringify(value, null, 1);
  } else if (kind === 'check') {
    input = h('input', { ...common, type: 'checkbox', checked: !!value });
    return h('div', { class: 'check' }, input, h('label', { for: common.id }, label),
      opts.help ? h('span', { id: common.id + '-help', class: 'muted' }, ' ' + opts.help) : null);
  } else {
    input = h('input', { ...common, type: kind === 'number' ? 'number' : 'text', required: opts.required,
      readonly: opts.readonly, list: opts.list, min: opts.min, max: opts.max, placeholder: opts.placeholder,
      autocomplete: 'off' });
    input.value = value === undefined || value === null ? '' : Array.isArray(value) ? value.join(', ') : String(value);
  }
  return h('div', { class: 'field' + (kind === 'json' ? ' wide-field' : '') }, h('label', { for: common.id }, label), input,
    opts.help ? h('small', { id: common.id + '-help', class: 'muted' }, opts.help) : null);
}

// readForm collects the form's fields by kind into an object the API
// takes; an empty field is left out. A JSON field that does not parse is
// an error naming it.
function readForm(form, kinds) {
  const out = {};
  for (const [id, kind] of Object.entries(kinds)) {
    const el = form.querySelector('[data-field="' + id + '"]');
    if (!el) continue;
    if (kind === 'check') { if (el.checked) out[id] = true; continue; }
    const v = el.value.trim();
    if (v === '') continue;
    if (kind === 'number') out[id] = Number(v);
    else if (kind === 'bool') out[id] = v === 'true';
    else if (kind === 'list') out[id] = v.split(',').map(s => s.trim()).filter(Boolean);
    else if (kind === 'json') {
      try { out[id] = JSON.parse(v); } catch (e) { throw Object.assign(new Error(id + ': not JSON: ' + e.message), { field: id }); }
    } else out[id] = v;
  }
  return out;
}

// refuse shows an error and moves the focus to the field it names: the
// API's "field", else the field an "invalid <field>: …" message is about.
function refuse(form, err) {
  report(err);
  const m = /^invalid ([a-z-]+):/.exec((err && err.message) || '');
  const field = (err && err.field) || (m && m[1]);
  const el = field && form.querySelector('[data-field="' + field + '"]');
  if (el) { el.setAttribute('aria-invalid', 'true'); el.focus(); }
}

// suggestions fills a datalist with the names of a kind of object the
// caller may read.
function suggestions(id, kind) {
  const dl = h('datalist', { id });
  api('GET', '/' + kind + params({ limit: 200 })).then(p => {
    put(dl, ...(p.items || []).map(o => h('option', { value: o.name })));
  }).catch(() => {});
  return dl;
}

// The kind of each promptable field, as the launch form asks for it.
const PROMPT_KINDS = {
  payload: 'json', 'extra-vars': 'json', inventory: 'text', limit: 'text', 'slice-count': 'number', forks: 'number',
  verbosity: 'number', 'diff-mode': 'bool', 'check-mode': 'bool', 'job-tags': 'text', 'skip-tags': 'text',
  timeout: 'number', priority: 'number', 'instance-groups': 'list', tags: 'list',
};

// launchFields are the inputs of a template's prompts, each showing the
// template's own value as its placeholder: a field left empty is not
// sent, and the template's value holds. read() returns the launch values
// (undefined when none is given) or throws naming a field that is not
// JSON.
function launchFields(t) {
  const prompts = (t.prompts || []).filter(p => PROMPT_KINDS[p]);
  const shown = v => v === undefined || v === null || v === '' ? '' : typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : String(v);
  const els = prompts.map(p => formField(p, p, PROMPT_KINDS[p], undefined, { prefix: 'l-',
    placeholder: PROMPT_KINDS[p] === 'bool' ? 'as the template: ' + (t[p] ? 'yes' : 'no') : shown(t[p]) || (PROMPT_KINDS[p] === 'json' ? '{}' : ''),
    list: p === 'inventory' ? 'dl-launch-inventories' : null,
    help: PROMPT_KINDS[p] === 'list' ? 'Comma-separated.' : null }));
  if (prompts.includes('inventory')) els.push(suggestions('dl-launch-inventories', 'inventories'));
  const kinds = Object.fromEntries(prompts.map(p => [p, PROMPT_KINDS[p]]));
  return { els, read: form => { const v = readForm(form, kinds); return Object.keys(v).length ? v : undefined; } };
}

const TEMPLATE_FIELDS = {
  name: 'text', description: 'text', action: 'text', payload: 'json', project: 'text', playbook: 'text',
  'extra-vars': 'json', inventory: 'text', limit: 'text', 'slice-count': 'number', forks: 'number', verbosity: 'number',
  'job-tags': 'text', 'skip-tags': 'text', 'diff-mode': 'check', 'check-mode': 'check', 'allow-simultaneous': 'check',
  timeout: 'number', priority: 'number', 'instance-groups': 'list', 'prevent-fallback': 'check', tags: 'list',
  credentials: 'list',
};

// templateForm creates a template (t undefined) or changes one.
async function templateForm(main, t) {
  const editing = !!t;
  t = t || { priority: 0 };
  const f = (id, label, opts) => formField(id, label, TEMPLATE_FIELDS[id], t[id], opts);
  const prompts = h('fieldset', { class: 'prompts', 'data-field': 'prompts' }, h('legend', {}, 'May be set at launch (prompts)'),
    PROMPTS.map(p => h('span', { class: 'check' }, h('input', { type: 'checkbox', id: 'e-prompt-' + p, value: p,
      checked: (t.prompts || []).includes(p) }), h('label', { for: 'e-prompt-' + p }, p))));
  const save = h('button', { type: 'submit', id: 'save' }, editing ? 'Save' : 'Create');
  const form = h('form', { class: 'card editor', id: 'template-form', 'aria-label': editing ? 'Edit template' : 'New template', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'Template'),
      f('name', 'Name', { required: true, readonly: editing, help: editing ? 'A template keeps its name.' : 'Letters, digits, . _ -' }),
      f('description', 'Description'),
      f('action', 'Action', { required: true, placeholder: 'ansible_playbook' }),
      f('payload', 'Payload (JSON object)', { help: "The action's arguments." })),
    h('fieldset', {}, h('legend', {}, 'Playbook'),
      f('project', 'Project', { list: 'dl-projects' }), f('playbook', 'Playbook', { placeholder: 'site.yml' }),
      f('extra-vars', 'Extra variables (JSON object)'),
      f('forks', 'Forks', { min: 0 }), f('verbosity', 'Verbosity', { min: 0, max: 5 }),
      f('job-tags', 'Job tags'), f('skip-tags', 'Skip tags'), f('diff-mode', 'Diff mode'), f('check-mode', 'Check mode')),
    h('fieldset', {}, h('legend', {}, 'Hosts and running'),
      f('inventory', 'Inventory', { list: 'dl-inventories' }), f('limit', 'Limit', { placeholder: 'web:&prod' }),
      f('slice-count', 'Slices', { min: 0 }), f('allow-simultaneous', 'Allow simultaneous runs'),
      f('timeout', 'Timeout (seconds)', { min: 0 }), f('priority', 'Priority', { min: 0, max: 999, help: '0–999, lower first' }),
      f('instance-groups', 'Instance groups', { help: 'Comma-separated, in preference order.' }),
      f('prevent-fallback', 'Stay on the first instance group'),
      f('tags', 'Job tags given to every job', { help: 'Comma-separated.' }),
      f('credentials', 'Credentials', { list: 'dl-credentials', help: 'Comma-separated names.' })),
    prompts,
    suggestions('dl-projects', 'projects'), suggestions('dl-inventories', 'inventories'),
    isAdmin() || readsAll() ? suggestions('dl-credentials', 'credentials') : null,
    h('div', { class: 'actions' }, save,
      h('a', { class: 'button secondary', href: editing ? '#/templates/' + encodeURIComponent(t.name) : '#/templates' }, 'Cancel')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    flash('');
    let body;
    try { body = readForm(form, TEMPLATE_FIELDS); } catch (e) { refuse(form, e); return; }
    body.prompts = [...prompts.querySelectorAll('input:checked')].map(i => i.value);
    if (editing) {
      // A PUT replaces the template: what the form does not show (the
      // host config key, fields of a newer API) is sent back as it was.
      const kept = { ...t };
      for (const k of [...Object.keys(TEMPLATE_FIELDS), 'prompts', 'created', 'updated']) delete kept[k];
      if (kept['host-config-key'] === '$hidden') delete kept['host-config-key'];
      body = { ...kept, ...body };
    }
    save.disabled = true;
    try {
      const out = editing ? await api('PUT', '/templates/' + encodeURIComponent(t.name), body) : await api('POST', '/templates', body);
      flash((editing ? 'Saved template ' : 'Created template ') + out.name, true);
      location.hash = '#/templates/' + encodeURIComponent(out.name);
    } catch (e) { refuse(form, e); save.disabled = false; }
  });
  main.append(h('h1', {}, editing ? 'Edit template ' + t.name : 'New template'), form);
  form.querySelector(editing ? '#e-description' : '#e-name').focus();
}

Pages.unshift({
  match: r => r.parts[0] === 'templates' && r.parts.length === 2 && r.parts[1] === '+new',
  render: async main => templateForm(main),
});
Pages.unshift({
  match: r => r.parts[0] === 'templates' && r.parts.length === 3 && r.parts[2] === 'edit',
  render: async (main, r) => templateForm(main, await api('GET', '/templates/' + encodeURIComponent(r.parts[1]))),
});

// deleteButton asks once more, in the page, before deleting: a keyboard
// user confirms with the button that takes the focus.
function deleteButton(what, path, after) {
  const box = h('span', { class: 'actions' });
  const ask = h('button', { type: 'button', class: 'danger', id: 'delete', onclick: () => {
    const yes = h('button', { type: 'button', class: 'danger', id: 'confirm-delete', onclick: async () => {
      yes.disabled = true;
      try { await api('DELETE', path); flash('Deleted ' + what, true); location.hash = after; }
      catch (e) { report(e); yes.disabled = false; }
    } }, 'Delete ' + what);
    const no = h('button', { type: 'button', class: 'secondary', onclick: () => { put(box, ask); ask.focus(); } }, 'Keep it');
    put(box, h('span', { role: 'alert' }, 'Delete ' + what + '? This cannot be undone. '), yes, no);
    yes.focus();
  } }, 'Delete');
  box.append(ask);
  return box;
}

const SCHEDULE_FIELDS = { name: 'text', description: 'text', cron: 'text', 'time-zone': 'text', rrule: 'text' };

Pages.unshift({
  match: r => r.parts[0] === 'schedules' && r.parts.length === 2 && r.parts[1] === '+new',
  render: async (main, r) => {
    const f = (id, label, opts) => formField(id, label, SCHEDULE_FIELDS[id], undefined, opts);
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const kind = h('select', { id: 'e-launch-kind', 'data-field': 'launch' },
      h('option', { value: 'template' }, 'a template'), h('option', { value: 'workflow' }, 'a workflow template'));
    const target = h('input', { id: 'e-launch-name', list: 'dl-templates', required: true, autocomplete: 'off',
      value: r.query.get('template') || '' });
    kind.addEventListener('change', () => target.setAttribute('list', kind.value === 'workflow' ? 'dl-workflows' : 'dl-templates'));
    const values = formField('values', 'Launch values (JSON object)', 'json', undefined, { help: 'Only the fields the template prompts for.' });
    const enabled = formField('enabled', 'Enabled', 'check', true);
    const catchUp = h('select', { id: 'e-catch-up', 'data-field': 'catch-up' },
      h('option', { value: 'last' }, 'run the last missed occurrence'), h('option', { value: 'none' }, 'skip missed occurrences'));
    const save = h('button', { type: 'submit', id: 'save' }, 'Create');
    const form = h('form', { class: 'card editor', id: 'schedule-form', 'aria-label': 'New schedule', novalidate: true },
      h('fieldset', {}, h('legend', {}, 'Schedule'),
        f('name', 'Name', { required: true, help: 'Letters, digits, . _ -' }), f('description', 'Description'),
        f('cron', 'Cron rule', { placeholder: '0 2 * * *', help: 'Five fields; or an RRULE below instead.' }),
        formField('time-zone', 'Time zone', 'text', zone, { help: 'Of the cron rule (IANA name).' }),
        f('rrule', 'RRULE', { placeholder: 'DTSTART;TZID=Europe/Paris:20260101T020000 RRULE:FREQ=DAILY' })),
      h('fieldset', {}, h('legend', {}, 'Launches'),
        h('div', { class: 'field' }, h('label', { for: 'e-launch-kind' }, 'Kind'), kind),
        h('div', { class: 'field' }, h('label', { for: 'e-launch-name' }, 'Name'), target),
        values),
      h('fieldset', {}, h('legend', {}, 'Runs'), enabled,
        h('div', { class: 'field' }, h('label', { for: 'e-catch-up' }, 'After a pause'), catchUp)),
      suggestions('dl-templates', 'templates'), suggestions('dl-workflows', 'workflows'),
      h('div', { class: 'actions' }, save, h('a', { class: 'button secondary', href: '#/schedules' }, 'Cancel')));
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      flash('');
      let body, launchValues;
      try {
        body = readForm(form, SCHEDULE_FIELDS);
        launchValues = readForm(form, { values: 'json' }).values;
      } catch (e) { refuse(form, e); return; }
      if (body.rrule) delete body['time-zone'];
      body.enabled = form.querySelector('[data-field="enabled"]').checked;
      body['catch-up'] = catchUp.value;
      body.launch = { [kind.value]: target.value.trim() };
      if (launchValues !== undefined) body.launch.values = launchValues;
      save.disabled = true;
      try {
        const out = await api('POST', '/schedules', body);
        flash('Created schedule ' + out.name, true);
        location.hash = '#/schedules/' + encodeURIComponent(out.name);
      } catch (e) { refuse(form, e); save.disabled = false; }
    });
    main.append(h('h1', {}, 'New schedule'), form);
    form.querySelector('#e-name').focus();
  },
});
