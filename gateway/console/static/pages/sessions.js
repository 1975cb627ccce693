// Sessions: find them by session id, task or agent; replay one as a timeline of its calls.
import {api, field, formValues, h, ms, num, post, select, table, usd, when, WINDOWS} from '../lib/dom.js';

export async function render(view, params, {go}) {
  if (params.id) return replay(view, params.id, go);
  const p = {from: '7d', ...params};
  view.append(h('h1', {}, 'Sessions'));
  const form = h('form', {class: 'controls', role: 'search', 'aria-label': 'Find sessions'},
    field('Session id starts with', h('input', {name: 'prefix', value: p.prefix || '', size: 16})),
    field('Task', h('input', {name: 'task', value: p.task || '', size: 12})),
    field('Agent', h('input', {name: 'agent', value: p.agent || '', size: 12})),
    field('Window', select('from', WINDOWS, p.from)),
    h('label', {class: 'check'}, h('input', {type: 'checkbox', name: 'failed', value: 'true', checked: p.failed === 'true'}), 'with errors only'),
    h('button', {type: 'submit'}, 'Find'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('sessions', formValues(form)); });
  view.append(form);
  const rows = (await api('sessions', {prefix: p.prefix, task: p.task, agent: p.agent, from: p.from, failed: p.failed})).data;
  view.append(table({caption: 'Most recently active first', columns: [
    {label: 'Session', render: (r) => h('a', {href: `#/sessions?id=${encodeURIComponent(r.session)}`}, r.session)},
    {label: 'Agent', render: (r) => (r.agents > 1 ? `${r.agent} +${r.agents - 1}` : r.agent)},
    {label: 'Task', render: (r) => (r.tasks > 1 ? `${r.task} +${r.tasks - 1}` : r.task ?? '–')},
    {label: 'Calls', key: 'calls', num: true, format: num},
    {label: 'Errors', key: 'errors', num: true, format: num},
    {label: 'Cost', key: 'cost_usd', num: true, format: usd},
    {label: 'Duration', key: 'duration_ms', num: true, format: ms},
    {label: 'Last call', key: 'ended', format: when},
  ], rows, empty: 'No sessions match.'}));
}

async function replay(view, id, go) {
  const data = await api(`sessions/${encodeURIComponent(id)}`);
  const calls = data.calls;
  const t0 = Date.parse(calls[0].time);
  const end = Math.max(...calls.map((c) => Date.parse(c.time) + c.latency_ms));
  view.append(h('p', {}, h('a', {href: '#/sessions'}, '← Sessions')), h('h1', {}, `Session ${id}`),
    h('p', {class: 'muted'}, `${num(data.totals.calls)} calls · ${num(data.totals.input_tokens)} in / ${num(data.totals.output_tokens)} out tokens · ${usd(data.totals.cost_usd)} · ${ms(end - t0)} from first call to last answer`));
  const span = Math.max(1, end - t0);
  view.append(h('ol', {class: 'timeline', 'aria-label': 'Calls on a time line'}, calls.map((c, i) => {
    const start = Date.parse(c.time) - t0;
    const bar = h('span', {class: `tl-bar o-${c.outcome}`});
    bar.style.marginLeft = `${(start / span) * 100}%`;
    bar.style.width = `${Math.max(0.5, (c.latency_ms / span) * 100)}%`;
    const jump = (e) => { e.preventDefault(); const card = document.getElementById(`call-${i}`); card.scrollIntoView(); card.focus(); };
    return h('li', {}, h('a', {href: `#/sessions?id=${encodeURIComponent(id)}`, class: 'tl-label', onclick: jump}, `${i + 1}. ${c.operation} ${c.model ?? c.requested_model}`),
      h('span', {class: 'tl-track'}, bar), h('span', {class: 'num'}, ms(c.latency_ms)));
  })));
  view.append(h('div', {class: 'calls'}, calls.map((c, i) => callCard(c, i, go))));
}

function callCard(c, i, go) {
  const verdicts = c.guardrails.map((v) => `${v.guardrail} ${v.action} (${v.phase}: ${v.entities.join(', ') || '–'} ×${v.count})`);
  const facts = [
    ['Time', when(c.time)], ['Agent', c.agent], ['Task', c.task ?? '–'], ['API', c.operation],
    ['Model', c.requested_model === c.model || !c.model ? (c.model ?? c.requested_model) : `${c.requested_model} → ${c.model}`],
    ['Provider', c.provider ?? '–'], ['Route', c.route ?? '–'], ['Status', `${c.status} ${c.outcome}${c.error_type ? ' · ' + c.error_type : ''}`],
    ['Tokens', `${num(c.usage.input_tokens)} in · ${num(c.usage.output_tokens)} out · ${num(c.usage.cached_tokens)} cached${c.usage.estimated ? ' (estimated)' : ''}`],
    ['Cost', usd(c.cost_usd)], ['Latency', `${ms(c.latency_ms)}${c.ttft_ms != null ? ` · first token ${ms(c.ttft_ms)}` : ''}`],
    ['Attempts', `${c.attempts}${c.failed_attempts.length ? ' · failed: ' + c.failed_attempts.map((a) => `${a.model ?? a.provider} ${a.status ?? ''} ${a.error ?? ''}`.trim()).join('; ') : ''}`],
    ['Guardrails', verdicts.length ? verdicts.join('; ') : 'none fired'], ['Request id', c.request_id],
  ];
  const card = h('article', {class: `card call o-${c.outcome}`, id: `call-${i}`, tabindex: -1, 'aria-label': `Call ${i + 1}`},
    h('h2', {}, `${i + 1}. ${c.operation} · ${c.model ?? c.requested_model}`, h('span', {class: `badge o-${c.outcome}`}, c.outcome)),
    h('dl', {class: 'facts'}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  if (c.input_messages || c.output_messages) {
    card.append(h('details', {}, h('summary', {}, 'Messages'),
      messages('Input', c.input_messages), messages('Output', c.output_messages)));
  } else {
    card.append(h('p', {class: 'muted'}, 'Messages not captured (telemetry.capture_content).'));
  }
  const status = h('span', {role: 'status', class: 'muted'});
  const label = h('input', {name: 'label', value: 'bad_answer', size: 14});
  const comment = h('input', {name: 'comment', size: 28});
  const form = h('form', {class: 'flag', 'aria-label': `Flag call ${i + 1}`},
    h('label', {}, 'Label ', label), h('label', {}, 'Comment ', comment), h('button', {type: 'submit'}, 'Flag this call'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await post('feedback', {request_id: c.request_id, label: label.value || 'flagged', comment: comment.value || undefined});
      status.textContent = 'Flagged.';
    } catch (error) { status.textContent = error.message; }
  });
  card.append(form);
  return card;
}

function messages(title, list) {
  if (!list) return null;
  return h('div', {class: 'messages'}, h('h3', {}, title), list.map((m) => h('div', {class: `msg ${m.role}`},
    h('strong', {}, m.role), (m.parts || []).map((part) => h('pre', {}, part.content ?? part.arguments ?? part.response ?? JSON.stringify(part))))));
}
