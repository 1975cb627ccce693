// Agents: calls, cost per task, error rate, latency; pick two to compare side by side. Rows are
// keyed by team and agent. An agent's page (#/agents?agent=NAME&team=TEAM) lists its workflow
// versions and compares two of them (the gateway's /v1/agents/compare).
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
  const p = {from: '24h', ...params};  // the agents active now; wider windows read more events
  if (p.agent) return versions(view, p, go);
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
    {label: 'Versions', render: (r) => h('a', {href: '#', onclick: (e) => { e.preventDefault(); go('agents', {from: p.from, team: r.team, agent: r.agent}); }}, 'versions')},
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

const VERSION_COLUMNS = [
  {label: 'Version', key: 'version'},
  {label: 'Source', key: 'source'},
  {label: 'First seen', key: 'first_seen', format: when},
  {label: 'Last seen', key: 'last_seen', format: when},
  {label: 'Calls', key: 'calls', num: true, format: num},
  {label: 'Error rate', key: 'error_rate', num: true, format: pct},
  {label: 'Cost per task', key: 'cost_per_task_usd', num: true, format: usd},
  {label: 'Guardrail rate', key: 'guardrail_rate', num: true, format: pct},
  {label: 'Feedback', key: 'feedback_score', num: true, format: score},
  {label: 'Judge', key: 'judge_score', num: true, format: score},
  {label: 'Eval pass rate', key: 'eval_pass_rate', num: true, format: pct},
];
const DIFFERENCES = [
  ['Error rate', 'error_rate', pct], ['Cost per task', 'cost_per_task_usd', usd], ['Cost per call', 'cost_per_call_usd', usd],
  ['Mean latency', 'latency_mean_ms', ms], ['Guardrail rate', 'guardrail_rate', pct], ['Feedback score', 'feedback_score', score],
  ['Judge score', 'judge_score', score], ['Judge pass rate', 'judge_pass_rate', pct], ['Eval pass rate', 'eval_pass_rate', pct],
];

function score(x) {
  return x === null || x === undefined ? '–' : x.toFixed(2);
}

// One agent's workflow versions, newest first, and two of them side by side.
async function versions(view, p, go) {
  view.append(h('h1', {}, `Agent ${p.agent}`), h('p', {}, h('a', {href: '#', onclick: (e) => { e.preventDefault(); go('agents', {from: p.from}); }}, 'All agents')));
  const scope = {from: p.from, team: p.team, agent: p.agent};
  const agent = (await api('agents', scope)).data[0];
  const rows = agent ? agent.versions.filter((v) => v.version !== null) : [];
  rows.sort((a, b) => (a.last_seen < b.last_seen ? 1 : -1));
  view.append(h('h2', {}, `${num(rows.length)} workflow versions`));
  if (rows.length === 0) { view.append(h('p', {class: 'muted'}, 'No versions of this agent in the window.')); return; }
  const picked = (p.compare || '').split(',').filter(Boolean);
  const chosen = picked.length === 2 ? picked : rows.slice(0, 2).map((v) => v.version).reverse();
  view.append(table({columns: [
    {label: 'Compare', render: (v) => h('input', {type: 'checkbox', 'aria-label': `Compare ${v.version}`, checked: chosen.includes(v.version),
      onchange: (e) => {  // ticking a version compares it with the second of the two shown
        const other = chosen.filter((name) => name !== v.version).pop();
        if (e.target.checked && other) go('agents', {...scope, compare: `${other},${v.version}`});
        else e.target.checked = chosen.includes(v.version);  // two are always compared
      }})},
    ...VERSION_COLUMNS,
  ], rows}));
  if (chosen.length < 2) { view.append(h('p', {class: 'muted'}, 'This agent has one version in the window.')); return; }
  const [a, b] = chosen;
  const side = await api('agents/compare', {...scope, a, b});
  const cell = (value, fmt) => h('td', {class: 'num'}, value === null || value === undefined ? '–' : fmt(value));
  const body = DIFFERENCES.map(([label, key, fmt]) => h('tr', {}, h('th', {scope: 'row'}, label),
    cell(side.a[key], fmt), cell(side.b[key], fmt), cell(side.difference_b_minus_a[key], fmt)));
  const head = h('tr', {}, ['', a, b, 'b − a'].map((text) => h('th', {scope: 'col'}, text)));
  const changes = side.definition_changes.length
    ? h('ul', {'aria-label': 'What changed'}, side.definition_changes.map((c) => h('li', {}, `${c.part}: ${JSON.stringify(c.a)} → ${JSON.stringify(c.b)}`)))
    : h('p', {class: 'muted'}, 'No change in the recorded definition (model, tools, guardrails, prompt).');
  view.append(h('section', {'aria-label': 'Versions side by side'}, h('h2', {}, `${a} and ${b} side by side`),
    h('div', {class: 'table-wrap'}, h('table', {class: 'compare'}, h('thead', {}, head), h('tbody', {}, body))), changes));
}
