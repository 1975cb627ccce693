// Feedback: flag a call (or a session, or a task), and export the flagged calls as JSONL eval cases.
import {apiText, apiUrl, field, h, post, select, table, when} from '../lib/dom.js';

export async function render(view, params) {
  view.append(h('h1', {}, 'Feedback'));
  const target = select('target', [['request_id', 'Call (request id)'], ['session_id', 'Session'], ['task_id', 'Task']], 'request_id');
  const id = h('input', {name: 'id', required: true, size: 36, value: params.request_id || ''});
  const label = h('input', {name: 'label', value: 'bad_answer', size: 16});
  const score = h('input', {name: 'score', type: 'number', step: 'any', size: 6});
  const comment = h('textarea', {name: 'comment', rows: 2, cols: 40, maxlength: 4000});
  const status = h('p', {role: 'status'});
  const form = h('form', {class: 'card controls', 'aria-label': 'Flag a call'}, h('h2', {}, 'Flag'),
    field('On', target), field('Id', id), field('Label', label), field('Score', score), field('Comment', comment),
    h('button', {type: 'submit'}, 'Send feedback'), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {[target.value]: id.value.trim(), label: label.value.trim() || undefined, comment: comment.value.trim() || undefined};
    if (score.value !== '') body.score = Number(score.value);
    try {
      const saved = await post('feedback', body);
      status.className = 'ok';
      status.textContent = `Saved as feedback #${saved.id}.`;
      await draw();
    } catch (error) {
      status.className = 'error';
      status.textContent = error.message;
    }
  });
  const exportBox = h('section', {'aria-label': 'Export'});
  view.append(form, exportBox);
  async function draw() {
    const text = await apiText('feedback/export');
    const cases = text.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    exportBox.replaceChildren(h('div', {class: 'row'}, h('h2', {}, `Flagged calls (${cases.length})`),
      h('a', {class: 'button', href: apiUrl('feedback/export'), download: 'agentgw-feedback.jsonl'}, 'Export JSONL')),
    table({columns: [
      {label: 'Time', key: 'time', format: when}, {label: 'Agent', key: 'agent'}, {label: 'Task', key: 'task'},
      {label: 'Session', render: (c) => (c.session ? h('a', {href: `#/sessions?id=${encodeURIComponent(c.session)}`}, c.session) : '–')},
      {label: 'Model', key: 'model'}, {label: 'Labels', render: (c) => c.labels.join(', ') || '–'},
      {label: 'Comment', render: (c) => c.feedback.map((f) => f.comment).filter(Boolean).join(' / ') || '–'},
    ], rows: cases.reverse(), empty: 'No feedback yet.', limit: 100}));
  }
  await draw();
}
