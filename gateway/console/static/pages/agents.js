// Agents: calls, cost per task, error rate, latency; pick two to compare side by side. Rows are
// keyed by team and agent; workflow versions will be rows within an agent once the ledger has them.
import {api, field, formValues, h, ms, num, pct, select, table, usd, when, WINDOWS} from '../lib/dom.js';

const COMPARE = [
  ['Calls', (a) => a.requests, num], ['Errors', (a) => a.errors, num], ['Error rate', (a) => a.error_rate, pct, true],
  ['Cost', (a) => a.cost_usd, usd, true], ['Tasks', (a) => a.tasks, num], ['Cost per task', (a) => a.cost_per_task_usd, usd, true],
  ['Sessions', (a) => a.sessions, num], ['Input tokens', (a) => a.input_tokens, num], ['Output tokens', (a) => a.output_tokens, num],
  ['p50 latency', (a) => a.latency_p50_ms, ms, true], ['p95 latency', (a) => a.latency_p95_ms, ms, true],
  ['APIs', (a) => Object.entries(a.operations).map(([k, v]) => `${k} ${num(v)}`).join(', '), String],
  ['Models', (a) => a.models.slice(0, 3).map((m) => m.model).join(', '), String],
  ['Last seen', (a) => a.last_seen, when],
];

export async function render(view, params, {go}) {
  const p = {from: '7d', ...params};
  view.append(h('h1', {}, 'Agents'));
  const form = h('form', {class: 'controls', 'aria-label': 'Agents window'}, field('Window', select('from', WINDOWS, p.from)),
    field('Team', h('input', {name: 'team', value: p.team || '', size: 12})), h('button', {type: 'submit'}, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('agents', formValues(form)); });
  view.append(form);
  const rows = (await api('agents', {from: p.from, team: p.team, versions: 'false'})).data;  // versions: not drawn here
  const picked = new Set((p.compare || '').split(',').filter(Boolean));
  if (picked.size === 0) rows.slice(0, 2).forEach((r) => picked.add(`${r.team}/${r.agent}`));
  const compareBox = h('section', {'aria-label': 'Comparison', 'aria-live': 'polite'});
  const drawCompare = () => {
    const chosen = rows.filter((r) => picked.has(`${r.team}/${r.agent}`)).slice(0, 3);
    compareBox.replaceChildren(h('h2', {}, 'Side by side'));
    if (chosen.length < 2) { compareBox.append(h('p', {class: 'muted'}, 'Tick two or three agents to compare them.')); return; }
    compareBox.append(h('div', {class: 'table-wrap'}, h('table', {class: 'compare'},
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, ''), chosen.map((a) => h('th', {scope: 'col'}, `${a.agent} (${a.team})`)))),
      h('tbody', {}, COMPARE.map(([label, get, fmt, lowerIsBetter]) => {
        const values = chosen.map(get);
        const best = lowerIsBetter ? Math.min(...values.filter((v) => typeof v === 'number')) : null;
        return h('tr', {}, h('th', {scope: 'row'}, label), values.map((v) =>
          h('td', {class: typeof v === 'number' ? 'num' + (lowerIsBetter && v === best ? ' best' : '') : null}, fmt(v))));
      })))));
  };
  view.append(compareBox);
  drawCompare();
  view.append(h('h2', {}, `${num(rows.length)} agents`), table({columns: [
    {label: 'Compare', render: (r) => h('input', {type: 'checkbox', 'aria-label': `Compare ${r.agent}`, checked: picked.has(`${r.team}/${r.agent}`),
      onchange: (e) => { const k = `${r.team}/${r.agent}`; e.target.checked ? picked.add(k) : picked.delete(k); drawCompare(); }})},
    {label: 'Agent', render: (r) => h('a', {href: `#/sessions?agent=${encodeURIComponent(r.agent)}`}, r.agent)},
    {label: 'Team', key: 'team'},
    {label: 'Calls', key: 'requests', num: true, format: num},
    {label: 'Error rate', key: 'error_rate', num: true, format: pct},
    {label: 'Cost', key: 'cost_usd', num: true, format: usd},
    {label: 'Tasks', key: 'tasks', num: true, format: num},
    {label: 'Cost per task', key: 'cost_per_task_usd', num: true, format: usd},
    {label: 'p95 latency', key: 'latency_p95_ms', num: true, format: ms},
    {label: 'APIs', render: (r) => Object.keys(r.operations).join(', ')},
  ], rows}));
}
