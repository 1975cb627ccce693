// Usage explorer: group by, filters, a chart over time, the table, and its CSV.
import {api, apiUrl, field, formValues, h, num, select, table, usd, WINDOWS} from '../lib/dom.js';
import {seriesFrom, timeChart} from '../lib/chart.js';

const DIMS = ['team', 'agent', 'task', 'session', 'model', 'provider', 'route', 'key', 'operation'];
const FILTERS = ['team', 'agent', 'task', 'model', 'provider', 'operation'];
const METRICS = [['cost_usd', 'Cost'], ['requests', 'Calls'], ['errors', 'Errors'], ['input_tokens', 'Input tokens'], ['output_tokens', 'Output tokens']];

export async function render(view, params, {go}) {
  const p = {group_by: 'agent', from: '7d', bucket: 'day', metric: 'cost_usd', ...params};
  const groups = p.group_by.split(',').filter((d) => DIMS.includes(d));
  view.append(h('h1', {}, 'Usage'));
  const form = h('form', {class: 'controls', 'aria-label': 'Usage query'},
    h('fieldset', {}, h('legend', {}, 'Group by'), DIMS.map((d) =>
      h('label', {class: 'check'}, h('input', {type: 'checkbox', name: 'group_by', value: d, checked: groups.includes(d)}), d))),
    field('Window', select('from', WINDOWS, p.from)),
    field('Over time by', select('bucket', [['day', 'day'], ['hour', 'hour']], p.bucket)),
    field('Chart', select('metric', METRICS, p.metric)),
    FILTERS.map((f) => field(f[0].toUpperCase() + f.slice(1), h('input', {name: f, value: p[f] || '', size: 12}))),
    h('button', {type: 'submit'}, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('usage', formValues(form)); });
  view.append(form);
  const filters = Object.fromEntries(FILTERS.filter((f) => p[f]).map((f) => [f, p[f]]));
  const query = {...filters, from: p.from, group_by: groups.join(',')};
  const chartBy = groups.find((g) => g !== 'session' && g !== 'task');
  const [report, series] = await Promise.all([
    api('usage', query),
    api('usage', {...filters, from: p.from, group_by: [chartBy, p.bucket].filter(Boolean).join(',')}),
  ]);
  const metric = METRICS.find(([k]) => k === p.metric) || METRICS[0];
  const fmt = metric[0] === 'cost_usd' ? usd : num;
  const {xs, series: lines} = chartBy ? seriesFrom(series.data, chartBy, p.bucket, metric[0])
    : {xs: series.data.map((r) => r[p.bucket]), series: [{name: metric[1], values: Object.fromEntries(series.data.map((r) => [r[p.bucket], r[metric[0]]]))}]};
  view.append(h('section', {'aria-label': 'Over time'}, h('h2', {}, `${metric[1]} per ${p.bucket}${chartBy ? ` by ${chartBy}` : ''}`),
    timeChart({xs, series: lines, format: fmt, kind: 'bars', label: `${metric[1]} per ${p.bucket}${chartBy ? ` by ${chartBy}` : ''}`})));
  const t = report.totals;
  const csv = apiUrl('usage', {...query, format: 'csv'});
  view.append(h('section', {'aria-label': 'Report'},
    h('div', {class: 'row'}, h('h2', {}, `${num(report.data.length)} rows · ${num(t.requests)} calls · ${usd(t.cost_usd)}`),
      h('a', {class: 'button', href: csv, download: 'agentgw-usage.csv'}, 'Download CSV')),
    table({columns: [
      ...groups.map((g) => ({label: g, key: g})),
      {label: 'Calls', key: 'requests', num: true, format: num},
      {label: 'Errors', key: 'errors', num: true, format: num},
      {label: 'Input tokens', key: 'input_tokens', num: true, format: num},
      {label: 'Output tokens', key: 'output_tokens', num: true, format: num},
      {label: 'Cost', key: 'cost_usd', num: true, format: usd},
    ], rows: [...report.data].sort((a, b) => b.cost_usd - a.cost_usd)})));
}
