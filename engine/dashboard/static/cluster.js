// The Cluster page: controllers and the leader, executors with their
// capacity and heartbeats, instance groups, the queue's depth, and charts
// of the last hour.
'use strict';

function meter(used, total) {
  const pct = total > 0 ? Math.min(100, Math.round(100 * used / total)) : 0;
  return h('span', {}, h('span', { class: 'meter' }, progressBar(pct)), ' ' + used + ' / ' + total);
}

// bars draws a bar chart of values (one bar a minute), with a label that
// says what it shows for those who do not see it.
function bars(cls, title, values, times) {
  const top = Math.max(1, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  const chart = h('div', { class: 'bars ' + cls, role: 'img',
    'aria-label': title + ': ' + total + ' over the hour, at most ' + top + ' a minute, ' + values[values.length - 1] + ' in the last minute' });
  values.forEach((v, i) => chart.append(h('span', { style: 'height:' + Math.round(100 * v / top) + '%', title: new Date(times[i]).toLocaleTimeString() + ': ' + v })));
  const axis = h('div', { class: 'axis', 'aria-hidden': 'true' }, h('span', {}, values.length + ' min ago'), h('span', {}, 'now'));
  return h('figure', { class: 'card' }, h('figcaption', {}, title + ' (max ' + top + ')'), chart, axis);
}

Pages.push({
  match: r => r.parts[0] === 'cluster',
  render: async (main) => {
    const overview = h('div');
    const charts = h('section', { id: 'charts' });
    main.append(h('h1', {}, 'Cluster'), overview, h('h2', {}, 'The last hour'), charts);
    every(3000, async () => {
      const c = await api('GET', '/cluster');
      const ctl = h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Controller'), h('th', {}, 'Role'), h('th', { class: 'wide' }, 'Since'))),
        h('tbody', {}, c.controllers.map(x => h('tr', {}, h('td', {}, x.name), h('td', {}, x.leader ? 'leader' : 'standby'), h('td', { class: 'wide' }, fmtTime(x.since))))));
      if (!c.controllers.length) ctl.tBodies[0].append(h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No controller runs the leader-run services.')));
      const ex = h('table', { id: 'executors' }, h('thead', {}, h('tr', {}, ['Executor', 'State', 'Capacity used / total', 'Jobs', 'Groups', 'Last heartbeat', 'Version']
        .map((x, i) => h('th', { class: i >= 5 ? 'wide' : '' }, x)))), h('tbody'));
      for (const i of c.instances) {
        ex.tBodies[0].append(h('tr', { 'data-executor': i.name }, h('td', {}, i.name, h('br'), h('span', { class: 'muted' }, i.host)),
          h('td', {}, stateBadge(i.state)), h('td', {}, meter(i['capacity-used'], i.capacity)),
          h('td', {}, i.busy + ' / ' + i.threads), h('td', {}, (i['instance-groups'] || []).join(', ')),
          h('td', { class: 'wide' }, ago(i['last-seen'])), h('td', { class: 'wide' }, i.version)));
      }
      if (!c.instances.length) ex.tBodies[0].append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No executor has joined.')));
      const gr = h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Group'), h('th', {}, 'Capacity used / total'), h('th', {}, 'Members'))),
        h('tbody', {}, c['instance-groups'].map(g => h('tr', {}, h('td', {}, g.name), h('td', {}, meter(g['capacity-used'], g.capacity)), h('td', {}, g.instances.join(', '))))));
      const q = c.queue;
      put(overview,
        h('section', { class: 'card', id: 'queue' }, fields([['Leader', c['active-controller'] || 'none'], ['Answered by', c.controller],
          ['Pending', q.pending], ['Queued', q.queued], ['Running', q.running], ['Shared queue entries', q['shared-queue-entries']],
          ['Quarantined documents', c.quarantined || 0]])),
        h('h2', {}, 'Controllers'), h('div', { class: 'scroll' }, ctl),
        h('h2', {}, 'Executors'), h('div', { class: 'scroll' }, ex),
        h('h2', {}, 'Instance groups'), h('div', { class: 'scroll' }, gr));
    });
    every(20000, async () => {
      const a = await api('GET', '/cluster/activity');
      const times = a.minutes.map(m => m.time);
      put(charts,
        bars('started', 'Jobs started per minute', a.minutes.map(m => m.started), times),
        bars('finished', 'Jobs finished per minute', a.minutes.map(m => m.finished), times),
        bars('queue', 'Jobs waiting (queue depth)', a.minutes.map(m => m.waiting), times),
        a['history-error'] ? h('p', { class: 'muted' }, 'Live jobs only: ' + a['history-error']) : null,
        a.truncated ? h('p', { class: 'muted' }, 'More jobs than counted.') : null);
    });
  },
});
