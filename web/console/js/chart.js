// A bar chart of monthly figures as SVG, with the same numbers in a table for screen readers and keyboards.

import { h, money, table } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

/** Monthly redemptions, spend and profit: spend and profit as bars (dollars), redemptions written above. */
export function monthlyChart(months, title) {
  const width = 640;
  const height = 240;
  const top = 28;
  const bottom = 36;
  const left = 8;
  const plot = height - top - bottom;
  const highest = Math.max(1, ...months.map((m) => Math.max(m.spend, m.profit)));
  const slot = (width - left * 2) / Math.max(1, months.length);
  const bar = Math.min(36, slot / 3);
  const bars = months.flatMap((m, i) => {
    const x = left + i * slot + slot / 2;
    const spendHeight = (m.spend / highest) * plot;
    const profitHeight = (Math.max(0, m.profit) / highest) * plot;
    return [
      svg('rect', { x: x - bar, y: top + plot - spendHeight, width: bar - 2, height: spendHeight, class: 'bar-spend' },
        svg('title', {}, `${m.month} spend ${money(m.spend)}`)),
      svg('rect', { x: x + 2, y: top + plot - profitHeight, width: bar - 2, height: profitHeight, class: 'bar-profit' },
        svg('title', {}, `${m.month} profit ${money(m.profit)}`)),
      svg('text', { x, y: top - 10, 'text-anchor': 'middle', class: 'chart-count' }, `${m.redemptions}`),
      svg('text', { x, y: height - 14, 'text-anchor': 'middle', class: 'chart-label' }, m.month),
    ];
  });
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, class: 'chart' },
    svg('line', { x1: left, x2: width - left, y1: top + plot, y2: top + plot, class: 'chart-axis' }), ...bars);
  return h('figure', { class: 'chart-figure' },
    chart,
    h('figcaption', {}, h('span', { class: 'key key-spend' }, 'Spend'), ' ', h('span', { class: 'key key-profit' }, 'Profit'),
      ' — numbers above the bars: redemptions'),
    h('details', {}, h('summary', {}, 'The same figures as a table'),
      table(title, [
        { label: 'Month', value: (m) => m.month },
        { label: 'Redemptions', value: (m) => m.redemptions, numeric: true },
        { label: 'Spend', value: (m) => money(m.spend), numeric: true },
        { label: 'Profit', value: (m) => money(m.profit), numeric: true },
      ], months)));
}
