// Budgets: cap, spent, reserved and remaining of every budget this key may see.
import {api, h, table, usd, when} from '../lib/dom.js';
import {bar} from '../lib/chart.js';
import {scopeName} from './overview.js';

export async function render(view) {
  view.append(h('h1', {}, 'Budgets'));
  const data = (await api('budgets')).data;
  view.append(table({caption: 'Spent and reserved against each cap, in its current period', columns: [
    {label: 'Scope', render: scopeName},
    {label: 'Period', key: 'period'},
    {label: 'Cap', key: 'cap_usd', num: true, format: usd},
    {label: 'Spent', key: 'spent_usd', num: true, format: usd},
    {label: 'Reserved', key: 'reserved_usd', num: true, format: usd},
    {label: 'Remaining', key: 'remaining_usd', num: true, format: usd},
    {label: 'Used', render: (b) => bar(b.spent_usd + b.reserved_usd, b.cap_usd,
      `${Math.round(((b.spent_usd + b.reserved_usd) / (b.cap_usd || 1)) * 100)}% used`, b.remaining_usd <= 0.1 * b.cap_usd ? 'hot' : '')},
    {label: 'Resets', key: 'resets_at', format: (v) => (v ? when(v) : 'never (total)')},
  ], rows: data, empty: 'No budgets apply to this key (set them under teams: and keys: in config.yaml).'}));
}
