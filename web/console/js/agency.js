// An agency's screen: its balance (with the low-credit warning), its clients with balance and usage, allocate and
// reclaim, and the monthly redemptions, spend and profit as a chart.

import { api, nameAccount } from './api.js';
import { monthlyChart } from './chart.js';
import { moveDialog } from './moves.js';
import { count, h, money, section, stat, table } from './ui.js';

export function agencyScreen(agencyId) {
  const title = h('h1', {}, 'Agency');
  const dashboard = section('Balance', () => api(`/dashboards/agencies/${encodeURIComponent(agencyId)}`), (d, reload) => {
    title.textContent = d.agency.name;
    document.title = `${d.agency.name} · Gift card console`;
    nameAccount(d.agency.account_id, d.agency.name);
    const low = d.agency.balance < d.agency.low_balance_threshold;
    return h('div', {},
      h('div', { class: 'stats' },
        stat('Balance', money(d.agency.balance), h('a', { href: `#/accounts/${d.agency.account_id}` }, 'Ledger')),
        stat('Clients', count(d.clients.length))),
      low ? h('p', { class: 'warning', role: 'alert' },
        `Low credit: the balance is below ${money(d.agency.low_balance_threshold)}. Ask the platform to add credit.`) : null,
      h('h2', {}, 'Clients'),
      clients(d, reload),
      h('h2', {}, 'Monthly redemptions, spend and profit'),
      monthlyChart(d.monthly, `${d.agency.name}: redemptions, spend and profit by month`));
  }, { id: 'agency' });
  return [title, dashboard];
}

function clients(d, reload) {
  const agency = d.agency;
  for (const c of d.clients) nameAccount(c.account_id, c.name);
  return table('Clients', [
    { label: 'Client', value: (c) => h('a', { href: `#/clients/${c.id}` }, c.name) },
    { label: 'Balance', value: (c) => money(c.balance), numeric: true },
    { label: 'Campaigns (active)', value: (c) => `${c.campaigns} (${c.active_campaigns})`, numeric: true },
    { label: 'Redemptions this month', value: (c) => count(c.month_to_date.redemptions), numeric: true },
    { label: 'Spend this month', value: (c) => money(c.month_to_date.spend), numeric: true },
    { label: 'Actions', value: (c) => h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => moveDialog({
        direction: 'allocation', from: agency, to: c, title: `Allocate to ${c.name}`, onDone: reload,
      }) }, 'Allocate', h('span', { class: 'label-suffix' }, ` to ${c.name}`)),
      h('button', { type: 'button', onclick: () => moveDialog({
        direction: 'reclaim', from: c, to: agency, title: `Reclaim from ${c.name}`, onDone: reload,
      }) }, 'Reclaim', h('span', { class: 'label-suffix' }, ` from ${c.name}`)),
      h('a', { href: `#/accounts/${c.account_id}` }, 'Ledger', h('span', { class: 'label-suffix' }, ` of ${c.name}`))) },
  ], d.clients, { emptyText: 'No clients yet.' });
}
