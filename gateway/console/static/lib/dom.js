// Small helpers: elements, formatting, the console API, tables. Text is always set as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || '';
export const who = () => JSON.parse(meta('agentgw-who') || '{}');

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) query.set(k, v);
  const qs = query.toString();
  return `/ui/api/${path}${qs ? '?' + qs : ''}`;
}
export const apiUrl = url;

async function answer(response) {
  if (response.status === 401) {
    location.replace('/ui' + location.hash);
    throw new ApiError(401, 'Signed out');
  }
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

export async function api(path, params) {
  const response = await fetch(url(path, params), {credentials: 'same-origin', headers: {accept: 'application/json'}});
  return (await answer(response)).json();
}

export async function apiText(path, params) {
  return (await answer(await fetch(url(path, params), {credentials: 'same-origin'}))).text();
}

export async function post(path, body) {
  const response = await fetch(path.startsWith('/') ? path : url(path), {
    method: 'POST', credentials: 'same-origin',
    headers: {'content-type': 'application/json', 'x-csrf-token': meta('agentgw-csrf')},
    body: JSON.stringify(body),
  });
  await answer(response);
  return response.status === 204 ? null : response.json();
}

const int = new Intl.NumberFormat('en-US');
export const num = (n) => (n === null || n === undefined ? '–' : int.format(n));
export function usd(n) {
  if (n === null || n === undefined) return '–';
  if (n === 0) return '$0';
  if (Math.abs(n) >= 100) return '$' + int.format(Math.round(n));
  if (Math.abs(n) >= 0.01) return '$' + n.toFixed(2);
  return '$' + n.toPrecision(2);
}
export const pct = (x) => (x === null || x === undefined ? '–' : (x * 100).toFixed(x < 0.1 ? 1 : 0) + '%');
export function ms(x) {
  if (x === null || x === undefined) return '–';
  if (x < 1000) return Math.round(x) + ' ms';
  if (x < 60e3) return (x / 1000).toFixed(2) + ' s';
  if (x < 3600e3) return (x / 60e3).toFixed(1) + ' min';
  if (x < 86400e3) return (x / 3600e3).toFixed(1) + ' h';
  return (x / 86400e3).toFixed(1) + ' days';
}
export const when = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+/, '').replace('Z', ' UTC') : '–');

export function table({caption, columns, rows, empty = 'Nothing in this window.', limit = 200}) {
  const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col', class: c.num ? 'num' : null}, c.label))));
  const shown = rows.slice(0, limit);
  const body = h('tbody', {}, shown.map((row) => h('tr', {}, columns.map((c) => {
    const value = c.render ? c.render(row) : c.format ? c.format(row[c.key]) : row[c.key] ?? '–';
    return h('td', {class: c.num ? 'num' : null}, value);
  }))));
  const wrap = h('div', {class: 'table-wrap'}, h('table', {}, caption ? h('caption', {}, caption) : null, head, body));
  if (!rows.length) wrap.append(h('p', {class: 'muted'}, empty));
  if (rows.length > limit) wrap.append(h('p', {class: 'muted'}, `First ${limit} of ${num(rows.length)} rows.`));
  return wrap;
}

export const stat = (label, value, detail) =>
  h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, label), h('div', {class: 'stat-value'}, value),
    detail ? h('div', {class: 'stat-detail'}, detail) : null);

export function failure(error) {
  return h('p', {class: 'error', role: 'alert'}, error.status === 403 ? `Not for this key: ${error.message}` : error.message);
}

export function field(label, control) {
  const id = control.id || 'f-' + Math.random().toString(36).slice(2);
  control.id = id;
  return h('div', {class: 'field'}, h('label', {for: id}, label), control);
}

export function select(name, options, value) {
  return h('select', {name}, options.map(([v, text]) => h('option', {value: v, selected: v === value}, text)));
}

export const WINDOWS = [['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['90d', 'Last 90 days']];

export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) if (String(v).trim()) out[k] = out[k] ? out[k] + ',' + v : String(v).trim();
  return out;
}
