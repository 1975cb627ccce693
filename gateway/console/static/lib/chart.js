// Charts drawn as SVG by hand: a time series (lines or stacked bars) and horizontal bars. Each chart
// is an image with a text label; the numbers behind it are always in a table next to it.

const NS = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#1f5fbf', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#4b5563'];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function ticks(max, count = 4) {
  if (max <= 0) return [0, 1];
  const raw = max / count;
  const step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((v) => v >= raw);
  const out = [];
  for (let v = 0; v <= max + step / 2; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

// series: [{name, values: {xLabel: y}}]; xs: the ordered x labels. kind: 'line' | 'bars' (stacked).
export function timeChart({xs, series, format = String, label, kind = 'line', height = 220}) {
  const width = 760, left = 64, right = 12, top = 10, bottom = 28;
  const plotW = width - left - right, plotH = height - top - bottom;
  const totals = xs.map((x) => series.reduce((acc, sr) => acc + (sr.values[x] || 0), 0));
  const peak = kind === 'bars' ? Math.max(0, ...totals) : Math.max(0, ...series.flatMap((sr) => xs.map((x) => sr.values[x] || 0)));
  const yt = ticks(peak);
  const ymax = yt[yt.length - 1] || 1;
  const y = (v) => top + plotH - (v / ymax) * plotH;
  const step = plotW / Math.max(1, xs.length);
  const x = (i) => left + step * i + step / 2;
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, class: 'chart'});
  svg.append(s('title', {}, label));
  for (const t of yt) {
    svg.append(s('line', {x1: left, x2: width - right, y1: y(t), y2: y(t), class: 'grid'}));
    svg.append(s('text', {x: left - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'axis'}, format(t)));
  }
  const every = Math.max(1, Math.ceil(xs.length / 8));
  xs.forEach((xl, i) => {
    if (i % every === 0) svg.append(s('text', {x: x(i), y: height - 8, 'text-anchor': 'middle', class: 'axis'}, shortLabel(xl)));
  });
  if (kind === 'bars') {
    const base = xs.map(() => 0);
    series.forEach((sr, k) => {
      xs.forEach((xl, i) => {
        const v = sr.values[xl] || 0;
        if (!v) return;
        const y0 = y(base[i]), y1 = y(base[i] + v);
        base[i] += v;
        svg.append(s('rect', {x: x(i) - step * 0.35, width: Math.max(1, step * 0.7), y: y1, height: Math.max(0.5, y0 - y1),
          fill: PALETTE[k % PALETTE.length]}, s('title', {}, `${sr.name} · ${xl}: ${format(v)}`)));
      });
    });
  } else {
    series.forEach((sr, k) => {
      const color = PALETTE[k % PALETTE.length];
      const points = xs.map((xl, i) => `${x(i).toFixed(1)},${y(sr.values[xl] || 0).toFixed(1)}`);
      svg.append(s('polyline', {points: points.join(' '), fill: 'none', stroke: color, 'stroke-width': 2}));
      xs.forEach((xl, i) => svg.append(s('circle', {cx: x(i), cy: y(sr.values[xl] || 0), r: xs.length > 60 ? 1.5 : 3, fill: color},
        s('title', {}, `${sr.name} · ${xl}: ${format(sr.values[xl] || 0)}`))));
    });
  }
  const figure = document.createElement('figure');
  figure.className = 'chart-figure';
  figure.append(svg);
  if (series.length > 1) figure.append(legend(series.map((sr) => sr.name)));
  return figure;
}

export function legend(names) {
  const ul = document.createElement('ul');
  ul.className = 'legend';
  names.forEach((name, k) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = PALETTE[k % PALETTE.length];
    li.append(sw, document.createTextNode(name));
    ul.append(li);
  });
  return ul;
}

function shortLabel(xl) {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}/.test(xl)) return xl.slice(5, 10) + ' ' + xl.slice(11, 13) + 'h';
  if (/^\d{4}-\d{2}-\d{2}$/.test(xl)) return xl.slice(5);
  return xl;
}

// A horizontal bar of `value` out of `max`, labelled for screen readers.
export function bar(value, max, text, tone = '') {
  const wrap = document.createElement('div');
  wrap.className = 'bar ' + tone;
  wrap.setAttribute('role', 'img');
  wrap.setAttribute('aria-label', text);
  const fill = document.createElement('div');
  fill.className = 'bar-fill';
  fill.style.width = `${Math.max(0, Math.min(100, max > 0 ? (value / max) * 100 : 0)).toFixed(1)}%`;
  wrap.append(fill);
  return wrap;
}

// Series over buckets from report rows grouped by [dim, bucket]: the `top` largest by `metric`, the rest as "other".
export function seriesFrom(rows, dim, bucket, metric, top = 6) {
  const xs = [...new Set(rows.map((r) => r[bucket]))].sort();
  const sums = new Map();
  for (const r of rows) sums.set(r[dim] ?? '(none)', (sums.get(r[dim] ?? '(none)') || 0) + r[metric]);
  const names = [...sums.entries()].sort((a, b) => b[1] - a[1]).map(([n]) => n);
  const kept = new Set(names.slice(0, top));
  const series = new Map(names.slice(0, top).map((n) => [n, {name: n, values: {}}]));
  if (names.length > top) series.set('other', {name: 'other', values: {}});
  for (const r of rows) {
    const name = r[dim] ?? '(none)';
    const sr = series.get(kept.has(name) ? name : 'other');
    sr.values[r[bucket]] = (sr.values[r[bucket]] || 0) + r[metric];
  }
  return {xs, series: [...series.values()]};
}
