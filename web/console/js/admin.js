// The platform admin's screens: the overview (credit, inventory, agencies with the fund action), alerts, pools
// with their card imports, and brands with their price lists.

import { accountName, api, nameAccount } from './api.js';
import { moveDialog } from './moves.js';
import {
  announce, count, dialog, empty, field, h, money, paged, parseAmount, query, section, stat, table, time,
} from './ui.js';

const HEALTH = { green: 'Healthy', yellow: 'Low', red: 'Out of stock' };

export function overview() {
  // One read of the dashboard for its three sections; funding an agency reads it again (credit issued changed).
  let dashboard = api('/dashboards/admin');
  const credit = section('Credit', () => dashboard, stats, { id: 'credit' });
  const funded = () => {
    dashboard = api('/dashboards/admin');
    credit.reload();
    agencies.reload();
  };
  const agencies = section('Agencies', async () => {
    const platform = await api('/platform');
    nameAccount(platform.account_id, 'Platform');
    return platform;
  }, (platform) => agencyList(platform, funded), { id: 'agencies' });
  return [
    h('h1', {}, 'Platform overview'),
    credit,
    section('Inventory', () => dashboard, (d) => inventory(d.inventory), { id: 'inventory' }),
    agencies,
    section('Open alerts', () => dashboard, (d) => alertSummary(d.alerts), { id: 'alert-summary' }),
  ];
}

function stats(d) {
  const month = d.profit.month_to_date;
  return h('div', { class: 'stats' },
    stat('Credit issued', money(d.platform.credit_issued), 'given to agencies, all time'),
    stat('Spent', money(d.platform.credit_spent), 'consumed by redemptions'),
    stat('Outstanding', money(d.platform.credit_outstanding), 'held by agencies, clients and campaigns'),
    stat('Profit this month', money(month.profit),
      `${count(month.redemptions)} ${month.redemptions === 1 ? 'redemption' : 'redemptions'}, ${money(month.charged)} charged`
        + (month.margin_percent === null ? '' : `, ${month.margin_percent}% margin`)));
}

function inventory(lines) {
  return table('Inventory by brand and denomination', [
    { label: 'Brand', value: (l) => l.brand },
    { label: 'Card', value: (l) => money(l.denomination), numeric: true },
    { label: 'Health', value: (l) => h('span', { class: `health health-${l.health}` }, HEALTH[l.health] || l.health) },
    { label: 'CSV available', value: (l) => count(l.csv.available), numeric: true },
    { label: 'CSV claimed', value: (l) => count(l.csv.claimed), numeric: true },
    { label: 'Pools', value: (l) => count(l.csv.pools), numeric: true },
    { label: 'Last 30 days: CSV / API', value: (l) => `${l.redemptions_last_30_days.csv} / ${l.redemptions_last_30_days.api}`, numeric: true },
  ], lines, { emptyText: 'No brands yet: add one under Brands.' });
}

function alertSummary(alerts) {
  const open = alerts.open;
  return h('div', {},
    h('p', {}, `${open.critical} critical, ${open.warning} warning, ${open.info} info. `, h('a', { href: '#/admin/alerts' }, 'See every alert')),
    alerts.latest.length ? h('ul', { class: 'plain' }, alerts.latest.map((a) =>
      h('li', {}, h('span', { class: `severity severity-${a.severity}` }, a.severity), ' ', a.message))) : empty('No alerts are open.'));
}

function agencyList(platform, reload) {
  const from = { name: 'Platform', account_id: platform.account_id, balance: platform.balance, unlimited: true };
  return paged((cursor) => api(`/agencies${query({ limit: 50, cursor })}`), (items) => {
    for (const a of items) nameAccount(a.account_id, a.name);
    return table('Agencies', [
      { label: 'Agency', value: (a) => h('a', { href: `#/agencies/${a.id}` }, a.name) },
      { label: 'Balance', value: (a) => money(a.balance), numeric: true },
      { label: 'Actions', value: (a) => h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => moveDialog({
          direction: 'allocation', from, to: a, title: `Fund ${a.name}`, submitLabel: 'Fund', onDone: reload,
        }) }, 'Fund', h('span', { class: 'label-suffix' }, ` ${a.name}`)),
        h('a', { href: `#/accounts/${a.account_id}` }, 'Ledger', h('span', { class: 'label-suffix' }, ` of ${a.name}`))) },
    ], items, { emptyText: 'No agencies yet.' });
  });
}

// --- alerts ---------------------------------------------------------------------------------------------

export function alertsScreen(params) {
  const status = params.get('status') === 'resolved' ? 'resolved' : 'open';
  const list = section(status === 'open' ? 'Open alerts' : 'Resolved alerts', async () => null, (_, reload) =>
    paged((cursor) => api(`/alerts${query({ status, limit: 50, cursor })}`), (items) => alertItems(items, reload)),
  { id: 'alerts' });
  return [
    h('h1', {}, 'Alerts'),
    h('p', {}, status === 'open'
      ? h('a', { href: '#/admin/alerts?status=resolved' }, 'Show resolved alerts')
      : h('a', { href: '#/admin/alerts' }, 'Show open alerts')),
    list,
  ];
}

function alertItems(items, reload) {
  if (!items.length) return empty('No alerts here. The monitor raises them when something needs a person.');
  return h('ul', { class: 'alerts' }, items.map((a) => h('li', { class: `alert alert-${a.severity}` },
    h('div', { class: 'alert-head' },
      h('span', { class: `severity severity-${a.severity}` }, a.severity),
      h('strong', {}, a.message)),
    h('p', { class: 'meta' },
      `${a.type} · ${a.entity_type}${a.entity_id ? ` ${accountName(a.entity_id) || a.entity_id.slice(0, 8)}` : ''}`
      + ` · first seen ${time(a.first_seen)} · last seen ${time(a.last_seen)} · ${a.occurrences}×`),
    h('p', { class: 'meta' }, a.status === 'acknowledged'
      ? `Acknowledged by ${a.acknowledged_by} at ${time(a.acknowledged_at)}` : a.status === 'resolved'
        ? `Resolved at ${time(a.resolved_at)}` : 'Open'),
    a.status === 'open' ? h('button', { type: 'button', onclick: async (event) => {
      event.target.disabled = true;
      try {
        await api(`/alerts/${a.id}/acknowledge`, { method: 'POST' });
        announce(`Alert acknowledged: ${a.message}`);
        reload();
      } catch (error) {
        event.target.disabled = false;
        if (error.status !== 401) announce(`Could not acknowledge the alert: ${error.message}`);
      }
    } }, 'Acknowledge', h('span', { class: 'label-suffix' }, `: ${a.message}`)) : null)));
}

// --- pools and card imports -----------------------------------------------------------------------------

export function poolsScreen() {
  const brands = api('/brands?limit=500');
  const pools = section('Card pools', () => brands, (b, reload) => {
    const byId = Object.fromEntries(b.items.map((brand) => [brand.id, brand]));
    return paged((cursor) => api(`/pools${query({ limit: 50, cursor })}`), (items) => table('Card pools', [
      { label: 'Pool', value: (p) => `${byId[p.brand_id] ? byId[p.brand_id].name : 'Brand'} ${money(p.denomination)}` },
      { label: 'Cost per card', value: (p) => money(p.cost_per_card), numeric: true },
      { label: 'Available', value: (p) => count(p.available), numeric: true },
      { label: 'Claimed', value: (p) => count(p.claimed), numeric: true },
      { label: 'Low stock below', value: (p) => count(p.low_stock_threshold), numeric: true },
      { label: 'Actions', value: (p) => h('button', { type: 'button', onclick: () => importDialog(p, byId[p.brand_id], reload) },
        'Import cards', h('span', { class: 'label-suffix' }, ` into ${byId[p.brand_id] ? byId[p.brand_id].name : ''} ${money(p.denomination)}`)) },
    ], items, { emptyText: 'No pools yet: create one to import cards.' }));
  }, { id: 'pools', actions: h('button', { type: 'button', onclick: () => newPoolDialog(brands, () => pools.reload()) }, 'New pool') });
  return [h('h1', {}, 'Pools and cards'), pools];
}

function importDialog(pool, brand, reload) {
  const name = `${brand ? brand.name : 'the pool'} ${money(pool.denomination)}`;
  dialog({
    title: `Import cards into ${name}`,
    describeText: 'A CSV file with the header card_code,card_number (optionally pin and expires_on). A bad line '
      + 'rejects the whole file: nothing is imported, and every bad line is listed.',
    submitLabel: 'Import',
    fields: () => field('CSV file', h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', required: true })),
    submit: async (form) => {
      const file = form.elements.file.files[0];
      if (!file) throw new Error('Choose a CSV file to import.');
      const answer = await api(`/pools/${pool.id}/cards`, { method: 'POST', body: await file.text(), contentType: 'text/csv' });
      return `Imported ${count(answer.imported)} cards into ${name}.`;
    },
    onDone: reload,
  });
}

function newPoolDialog(brandsLoaded, reload) {
  brandsLoaded.then((brands) => {
    const options = brands.items.flatMap((b) => b.denominations.map((d) =>
      h('option', { value: JSON.stringify([b.id, d]) }, `${b.name} ${money(d)}`)));
    dialog({
      title: 'New card pool',
      submitLabel: 'Create pool',
      fields: () => [
        field('Brand and card', h('select', { name: 'card', required: true }, options)),
        field('Cost per card (USD)', h('input', { name: 'cost', inputmode: 'decimal', required: true })),
        field('Low stock below (cards)', h('input', { name: 'threshold', inputmode: 'numeric', value: '50' })),
      ],
      submit: async (form) => {
        const [brandId, denomination] = JSON.parse(form.elements.card.value || 'null') || [];
        if (!brandId) throw new Error('Create a brand first.');
        const cost = parseAmount(form.elements.cost.value);
        if (cost.error) throw new Error(cost.error);
        const threshold = Number(form.elements.threshold.value || 50);
        await api('/pools', { method: 'POST', json: {
          brand_id: brandId, denomination, cost_per_card: cost.value, low_stock_threshold: threshold,
        } });
        return 'Pool created.';
      },
      onDone: reload,
    });
  });
}

// --- brands and price lists -----------------------------------------------------------------------------

export function brandsScreen() {
  const brands = section('Brands and price lists', async () => null, () =>
    paged((cursor) => api(`/brands${query({ limit: 50, cursor })}`), (items) => items.length
      ? h('div', { class: 'brands' }, items.map(brandCard))
      : empty('No brands yet.')),
  { id: 'brands', actions: h('button', { type: 'button', onclick: () => newBrandDialog(() => brands.reload()) }, 'New brand') });
  return [h('h1', {}, 'Brands'), brands];
}

function brandCard(brand) {
  const prices = Object.fromEntries(brand.prices.map((p) => [p.denomination, p]));
  return h('article', { class: 'brand-card' },
    h('h3', {}, brand.name),
    table(`${brand.name} price list`, [
      { label: 'Card', value: (d) => money(d) },
      { label: 'Agency price', value: (d) => (prices[d] && prices[d].agency_price !== null ? money(prices[d].agency_price) : 'face value + markup'), numeric: true },
      { label: 'Client price', value: (d) => (prices[d] && prices[d].client_price !== null ? money(prices[d].client_price) : 'face value'), numeric: true },
    ], brand.denominations));
}

function newBrandDialog(reload) {
  dialog({
    title: 'New brand',
    submitLabel: 'Create brand',
    fields: () => [
      field('Name', h('input', { name: 'name', required: true, maxlength: '200' })),
      field('Denominations (USD)', h('input', { name: 'denominations', required: true, placeholder: '25, 50' }),
        'Card values, separated by commas.'),
    ],
    submit: async (form) => {
      const denominations = [];
      for (const part of form.elements.denominations.value.split(',').filter((p) => p.trim())) {
        const amount = parseAmount(part);
        if (amount.error) throw new Error(`${part.trim()}: ${amount.error}`);
        denominations.push(amount.value);
      }
      if (!denominations.length) throw new Error('Give at least one denomination.');
      await api('/brands', { method: 'POST', json: { name: form.elements.name.value.trim(), denominations } });
      return `Brand ${form.elements.name.value.trim()} created.`;
    },
    onDone: reload,
  });
}

