// Guardrails: triggers over time by guardrail, and by agent.
import {api, field, formValues, h, num, select, table, WINDOWS} from '../lib/dom.js';
import {timeChart} from '../lib/chart.js';

export async function render(view, params, {go}) {
  const p = {from: '7d', bucket: 'day', ...params};
  view.append(h('h1', {}, 'Guardrails'));
  const form = h('form', {class: 'controls', 'aria-label': 'Guardrail window'},
    field('Window', select('from', WINDOWS, p.from)), field('Per', select('bucket', [['day', 'day'], ['hour', 'hour']], p.bucket)),
    field('Agent', h('input', {name: 'agent', value: p.agent || '', size: 12})), h('button', {type: 'submit'}, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('guardrails', formValues(form)); });
  view.append(form);
  const data = await api('guardrails/triggers', {from: p.from, bucket: p.bucket, agent: p.agent});
  const xs = [...new Set(data.data.map((r) => r.bucket))].sort();
  const series = data.totals.map((t) => ({name: t.guardrail, values: Object.fromEntries(data.data.filter((r) => r.guardrail === t.guardrail).map((r) => [r.bucket, r.calls]))}));
  view.append(h('h2', {}, `Calls on which a guardrail fired, per ${p.bucket}`),
    xs.length ? timeChart({xs, series, kind: 'bars', format: num, label: `Guardrail triggers per ${p.bucket} by guardrail`}) : h('p', {class: 'muted'}, 'No guardrail fired in this window.'));
  view.append(h('div', {class: 'columns'},
    h('section', {}, h('h2', {}, 'By guardrail'), table({columns: [
      {label: 'Guardrail', key: 'guardrail'}, {label: 'Calls', key: 'calls', num: true, format: num},
      {label: 'Matches', key: 'matches', num: true, format: num},
      {label: 'Actions', render: (t) => Object.entries(t.actions).map(([a, n]) => `${a} ${num(n)}`).join(', ')},
    ], rows: data.totals})),
    h('section', {}, h('h2', {}, 'By agent'), table({columns: [
      {label: 'Agent', key: 'agent'}, {label: 'Team', key: 'team'}, {label: 'Guardrail', key: 'guardrail'},
      {label: 'Calls', key: 'calls', num: true, format: num}, {label: 'Matches', key: 'matches', num: true, format: num},
    ], rows: data.by_agent, limit: 50}))));
}
