// Routes: each route's and model's targets with breaker state and latency (admin keys), and the
// ledger's latency percentiles per model.
import {api, failure, h, ms, num, table} from '../lib/dom.js';

export async function render(view) {
  view.append(h('h1', {}, 'Routes'));
  const [routes, latency] = await Promise.all([api('routes').catch((e) => e), api('usage/latency', {group_by: 'model', from: '24h'})]);
  if (routes instanceof Error) {
    view.append(failure(routes));
  } else {
    const rows = routes.data.flatMap((r) => r.targets.map((t, i) => ({...t, route: i === 0 ? r.name : '', type: i === 0 ? `${r.type} · ${r.strategy}` : ''})));
    view.append(table({caption: 'Targets as this gateway process sees them now', columns: [
      {label: 'Route or model', key: 'route'}, {label: 'Kind', key: 'type'},
      {label: 'Target', render: (t) => `${t.model} (${t.provider}/${t.upstream_model})`},
      {label: 'Breaker', render: (t) => h('span', {class: `badge o-${t.breaker}`}, t.breaker + (t.breaker_retry_in_s ? ` · ${Math.ceil(t.breaker_retry_in_s)} s` : ''))},
      {label: 'Latency (avg)', key: 'latency_ewma_ms', num: true, format: ms},
      {label: 'First token (avg)', key: 'ttft_ewma_ms', num: true, format: ms},
      {label: 'OK', key: 'successes', num: true, format: num},
      {label: 'Failed', key: 'failures', num: true, format: num},
      {label: 'Last failure', render: (t) => t.last_failure_kind ? `${t.last_failure_kind}, ${Math.round(t.seconds_since_failure)} s ago` : '–'},
    ], rows}));
  }
  view.append(h('h2', {}, 'Latency by model, last 24 hours (answered calls)'), table({columns: [
    {label: 'Model', key: 'model'}, {label: 'Calls', key: 'calls', num: true, format: num},
    {label: 'p50', key: 'latency_p50_ms', num: true, format: ms}, {label: 'p95', key: 'latency_p95_ms', num: true, format: ms},
    {label: 'p99', key: 'latency_p99_ms', num: true, format: ms}, {label: 'First token p50', key: 'ttft_p50_ms', num: true, format: ms},
    {label: 'First token p95', key: 'ttft_p95_ms', num: true, format: ms},
  ], rows: latency.data}));
}
