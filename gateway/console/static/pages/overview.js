// Overview: spend today and this month against budgets, calls, errors, p95 latency, top agents and tasks.
import {api, h, ms, num, pct, stat, table, usd, failure} from '../lib/dom.js';
import {bar, timeChart} from '../lib/chart.js';

export async function render(view, params, {go, me}) {
  view.append(h('h1', {}, 'Overview'));
  const [data, budgets] = await Promise.all([api('overview'), api('budgets').catch((e) => e)]);
  const month = data.month, today = data.today;
  const monthly = Array.isArray(budgets?.data) ? budgets.data.filter((b) => b.period === 'month') : [];
  const daily = Array.isArray(budgets?.data) ? budgets.data.filter((b) => b.period === 'day') : [];
  // An admin's or team admin's spend is set against the team budgets (added up); an agent's against its tightest cap.
  const capOf = (list) => {
    const teams = list.filter((b) => b.scope.kind === 'team');
    if (me.role !== 'agent' && teams.length) {
      const cap = teams.reduce((sum, b) => sum + b.cap_usd, 0);
      return {cap_usd: cap, label: teams.length > 1 ? `${teams.length} team budgets` : scopeName(teams[0])};
    }
    if (me.role !== 'agent' || !list.length) return null;
    const tight = list.reduce((a, b) => (b.cap_usd < a.cap_usd ? b : a));
    return {cap_usd: tight.cap_usd, label: scopeName(tight)};
  };
  const monthCap = capOf(monthly), dayCap = capOf(daily);
  view.append(h('section', {class: 'stats', 'aria-label': 'Totals'},
    stat('Spend today', usd(today.cost_usd), dayCap ? `of ${usd(dayCap.cap_usd)} (${dayCap.label})` : `${num(today.requests)} calls`),
    stat('Spend this month', usd(month.cost_usd), monthCap ? `of ${usd(monthCap.cap_usd)} (${monthCap.label})` : 'no monthly budget'),
    stat('Calls this month', num(month.requests), `${num(today.requests)} today`),
    stat('Errors this month', num(month.errors), month.requests ? `${pct(month.errors / month.requests)} of calls` : ''),
    stat('p95 latency, 24 h', ms(data.latency_24h.latency_p95_ms), `p50 ${ms(data.latency_24h.latency_p50_ms)} · ${num(data.latency_24h.calls)} calls`),
  ));
  if (monthly.length || daily.length) {
    view.append(h('section', {'aria-label': 'Budgets'}, h('h2', {}, 'Budgets'),
      h('ul', {class: 'budget-list'}, [...daily, ...monthly].slice(0, 6).map((b) => h('li', {},
        h('span', {}, `${scopeName(b)} · ${b.period}`),
        bar(b.spent_usd + b.reserved_usd, b.cap_usd, `${usd(b.spent_usd)} spent of ${usd(b.cap_usd)}`, b.spent_usd / b.cap_usd > 0.9 ? 'hot' : ''),
        h('span', {class: 'num'}, `${usd(b.spent_usd)} / ${usd(b.cap_usd)}`))))));
  } else if (budgets instanceof Error) {
    view.append(failure(budgets));
  }
  const xs = data.daily.map((d) => d.day);
  view.append(h('section', {'aria-label': 'Spend per day'}, h('h2', {}, 'Spend per day, last 30 days'),
    timeChart({xs, kind: 'bars', format: usd, label: `Spend per day over the last 30 days, ${usd(data.daily.reduce((a, d) => a + d.cost_usd, 0))} in all`,
      series: [{name: 'cost', values: Object.fromEntries(data.daily.map((d) => [d.day, d.cost_usd]))}]})));
  const link = (text, page, p) => h('a', {href: '#', onclick: (e) => { e.preventDefault(); go(page, p); }}, text);
  view.append(h('div', {class: 'columns'},
    h('section', {}, h('h2', {}, `Top agents this month (of ${num(data.agents)})`), table({columns: [
      {label: 'Agent', render: (r) => link(r.agent, 'sessions', {agent: r.agent})},
      {label: 'Team', key: 'team'},
      {label: 'Calls', key: 'requests', num: true, format: num},
      {label: 'Errors', key: 'errors', num: true, format: num},
      {label: 'Cost', key: 'cost_usd', num: true, format: usd},
    ], rows: data.top_agents})),
    h('section', {}, h('h2', {}, `Top tasks this month (of ${num(data.tasks)})`), table({columns: [
      {label: 'Task', render: (r) => link(r.task, 'sessions', {task: r.task})},
      {label: 'Calls', key: 'requests', num: true, format: num},
      {label: 'Errors', key: 'errors', num: true, format: num},
      {label: 'Cost', key: 'cost_usd', num: true, format: usd},
    ], rows: data.top_tasks})),
  ));
}

export function scopeName(b) {
  const s = b.scope || {};
  return s.kind === 'team' ? `team ${s.team}` : `${s.kind} ${s.name ?? ''}`.trim();
}
