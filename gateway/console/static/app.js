// The console's shell: navigation, the page router (location.hash), sign-out. Pages are ES modules
// loaded when first shown; each exports render(main, params) and resolves when its data is drawn.
import {h, post, who} from './lib/dom.js';

const PAGES = [
  ['overview', 'Overview'], ['usage', 'Usage'], ['budgets', 'Budgets'], ['agents', 'Agents'],
  ['sessions', 'Sessions'], ['routes', 'Routes'], ['guardrails', 'Guardrails'], ['feedback', 'Feedback'],
];
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const me = who();

nav.replaceChildren(...PAGES.map(([id, label]) => h('li', {}, h('a', {href: `#/${id}`, 'data-page': id}, label))));
document.getElementById('who').textContent =
  `${me.key} · ${me.role === 'admin' ? 'admin' : me.role === 'team_admin' ? `team admin of ${me.team}` : `agent${me.agent ? ' ' + me.agent : ''} in ${me.team}`}`;
document.getElementById('signout').addEventListener('click', async () => {
  try { await post('/ui/logout', {}); } finally { location.replace('/ui'); }
});

// In-page links must not touch location.hash: it holds the page being shown.
document.querySelector('.skip').addEventListener('click', (e) => { e.preventDefault(); main.focus(); });

export function go(page, params = {}) {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null)).toString();
  location.hash = `#/${page}${qs ? '?' + qs : ''}`;
}

let current = 0;
async function show() {
  const [path, qs] = location.hash.replace(/^#\/?/, '').split('?');
  const page = PAGES.find(([id]) => id === path) ? path : 'overview';
  const params = Object.fromEntries(new URLSearchParams(qs || ''));
  const turn = ++current;
  for (const a of nav.querySelectorAll('a')) a.toggleAttribute('aria-current', a.dataset.page === page);
  if (a11yLabel(page)) document.title = `${a11yLabel(page)} · agentgw console`;
  delete document.body.dataset.ready;
  const module = await import(`./pages/${page}.js`);
  if (turn !== current) return;
  const view = h('div', {class: 'page'});
  main.replaceChildren(view);
  try {
    await module.render(view, params, {go, me});
  } catch (error) {
    view.append(h('p', {class: 'error', role: 'alert'}, error.message || String(error)));
  }
  if (turn !== current) return;
  document.body.dataset.ready = page;
  performance.mark(`ready:${page}`);
}

const a11yLabel = (page) => PAGES.find(([id]) => id === page)?.[1];
window.addEventListener('hashchange', show);
show();
