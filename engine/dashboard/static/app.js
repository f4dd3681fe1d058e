// The dashboard's core: calls to the API, the router and the login page.
// Pages register themselves in Pages (jobs.js, objects.js, cluster.js).
// Text is always set as text, never parsed as HTML.
'use strict';

const API = '/api/v1';
const Pages = [];
let me = null;
let cleanups = [];

// h builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    // Through the CSSOM: the content security policy refuses style attributes.
    else if (k === 'style') el.style.cssText = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v || '');
  }
  return '';
}

class APIError extends Error {
  // field is the input the API named as wrong, if any.
  constructor(status, message, field) { super(message); this.status = status; this.field = field || ''; }
}

// api calls the API; changes carry the session's CSRF token.
async function api(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = cookie('jobengine_csrf');
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(API + path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (e) { data = null; }
  }
  if (res.status === 401 && path !== '/login') {
    me = null;
    showLogin();
    throw new APIError(401, 'please log in');
  }
  if (!res.ok) {
    let msg = (data && data.error) || res.statusText;
    if (res.status === 403) msg = 'Permission refused: ' + msg;
    if (res.status === 429) msg += ' (try again in ' + (res.headers.get('Retry-After') || 'a few') + ' s)';
    throw new APIError(res.status, msg, data && data.field);
  }
  return data;
}

function flash(msg, info) {
  const el = document.getElementById('flash');
  el.className = info ? 'info' : '';
  el.textContent = msg || '';
}

// report shows an error of a call (a 401 already showed the login page).
function report(err) {
  if (err && err.status === 401) return;
  flash(err && err.message ? err.message : String(err));
}

// every runs fn now and every ms milliseconds while the page is shown.
function every(ms, fn) {
  let stopped = false, timer = null;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { report(e); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  cleanups.push(() => { stopped = true; clearTimeout(timer); });
}

function onLeave(fn) { cleanups.push(fn); }

function fmtTime(t) {
  if (!t || t.startsWith('0001')) return '';
  const d = new Date(t);
  return d.toLocaleString();
}

function ago(t) {
  if (!t || t.startsWith('0001')) return '';
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function stateBadge(s) { return h('span', { class: 'state state-' + s }, s); }

function uuidOf(id) { return (id || '').replace(/^job\//, ''); }

function fields(pairs) {
  const dl = h('dl', { class: 'fields' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(h('dt', {}, k), h('dd', {}, v));
  }
  return dl;
}

function params(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// route reads the hash: #/jobs/abc?state=RUNNING → ['jobs', 'abc'], {state: …}.
function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || '') };
}

function isAdmin() { return me && me.user && me.user.role === 'admin'; }
function readsAll() { return me && me.user && (me.user.role === 'admin' || me.user.role === 'auditor'); }

// holds reports whether the caller has role (or a stronger one) on an object.
function holds(kind, name, role) {
  if (isAdmin()) return true;
  const rank = { read: 1, execute: 2, admin: 3 };
  return ((me && me.grants) || []).some(g => g.kind === kind && g.object === name && rank[g.role] >= rank[role]);
}

async function render() {
  for (const c of cleanups) c();
  cleanups = [];
  flash('');
  const main = document.getElementById('main');
  if (!me) {
    try { me = await api('GET', '/me'); } catch (e) { if (e.status !== 401) report(e); return; }
  }
  document.getElementById('top').hidden = false;
  document.getElementById('whoami').textContent = me.user.name;
  const r = route();
  if (r.parts.length === 0) { location.hash = '#/jobs'; return; }
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === '#/' + r.parts[0]);
    if (a.classList.contains('active')) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const page = Pages.find(p => p.match(r));
  main.replaceChildren();
  if (!page) { main.append(h('h1', {}, 'Not found'), h('p', {}, 'No page at ' + location.hash)); return; }
  try { await page.render(main, r); } catch (e) { report(e); }
}

function showLogin() {
  for (const c of cleanups) c();
  cleanups = [];
  document.getElementById('top').hidden = true;
  const main = document.getElementById('main');
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card login', 'aria-label': 'Log in' },
    h('h1', {}, 'Log in to jobengine'),
    h('label', { for: 'username' }, 'User'), user,
    h('label', { for: 'password' }, 'Password'), pass,
    h('button', { type: 'submit', id: 'login' }, 'Log in'));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    flash('');
    try {
      await api('POST', '/login', { username: user.value, password: pass.value });
      me = null;
      render();
    } catch (e) { report(e); }
  });
  main.replaceChildren(form);
  user.focus();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/logout'); } catch (e) { /* a session that ended already */ }
    me = null;
    showLogin();
  });
  window.addEventListener('hashchange', render);
  render();
});

// put replaces an element's children, leaving out those not given.
function put(el, ...children) {
  el.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined && c !== false));
}
