// A client's screen: its balance, its campaigns (budget mode and the switch, allocate, reclaim, pause and resume,
// estimated redemptions remaining, issuing codes), and its redemptions with their totals.

import { api, nameAccount } from './api.js';
import { moveDialog } from './moves.js';
import { announce, count, dialog, field, h, money, paged, query, replace, section, stat, table, time } from './ui.js';

export function clientScreen(clientId) {
  const title = h('h1', {}, 'Client');
  const id = encodeURIComponent(clientId);
  const redemptions = section('Redemptions', async () => null, () => redemptionList(clientId), { id: 'redemptions' });
  const dashboard = section('Balance and campaigns', () => api(`/dashboards/clients/${id}`), (d, reload) => {
    title.textContent = d.client.name;
    document.title = `${d.client.name} · Gift card console`;
    nameAccount(d.client.account_id, d.client.name);
    const low = d.client.balance < d.client.low_balance_threshold;
    const refresh = () => { reload(); redemptions.reload(); };
    return h('div', {},
      h('div', { class: 'stats' },
        stat('Balance', money(d.client.balance), h('a', { href: `#/accounts/${d.client.account_id}` }, 'Ledger')),
        stat('Campaigns', count(d.campaigns.length), `${d.campaigns.filter((c) => c.status === 'active').length} active`)),
      low ? h('p', { class: 'warning', role: 'alert' },
        `Low credit: the balance is below ${money(d.client.low_balance_threshold)}. Ask your agency for more.`) : null,
      h('h2', {}, 'Campaigns'),
      campaigns(d, refresh));
  }, { id: 'client' });
  return [title, dashboard, redemptions];
}

function campaigns(d, reload) {
  const client = d.client;
  for (const c of d.campaigns) nameAccount(c.account_id, c.name);
  return table('Campaigns', [
    { label: 'Campaign', value: (c) => c.name },
    { label: 'Status', value: (c) => h('span', { class: `status-${c.status}` }, c.status,
      c.paused_reason ? ` (${c.paused_reason.replace(/_/g, ' ')})` : '') },
    { label: 'Budget', value: (c) => (c.budget_mode === 'shared' ? 'Shared with the client' : 'Isolated') },
    { label: 'Own balance', value: (c) => money(c.balance), numeric: true },
    { label: 'Credit available', value: (c) => money(c.available_credit), numeric: true },
    { label: 'Redemptions', value: (c) => count(c.redemptions), numeric: true },
    { label: 'Spend', value: (c) => money(c.spend), numeric: true },
    { label: 'Est. redemptions left', value: (c) => count(c.estimated_redemptions_remaining), numeric: true },
    { label: 'Actions', value: (c) => campaignActions(c, client, reload) },
  ], d.campaigns, { emptyText: 'No campaigns yet.' });
}

function campaignActions(c, client, reload) {
  const hidden = (text) => h('span', { class: 'label-suffix' }, text);
  const isolated = c.budget_mode === 'isolated';
  const ended = c.status === 'ended';
  return h('div', { class: 'actions' },
    isolated && !ended ? h('button', { type: 'button', onclick: () => moveDialog({
      direction: 'allocation', from: client, to: c, title: `Allocate to ${c.name}`, onDone: reload,
    }) }, 'Allocate', hidden(` to ${c.name}`)) : null,
    isolated ? h('button', { type: 'button', onclick: () => moveDialog({
      direction: 'reclaim', from: c, to: client, title: `Reclaim from ${c.name}`, onDone: reload,
    }) }, 'Reclaim', hidden(` from ${c.name}`)) : null,
    !ended ? h('button', { type: 'button', onclick: () => switchDialog(c, client, reload) },
      isolated ? 'Switch to shared' : 'Switch to isolated', hidden(`: ${c.name}`)) : null,
    !ended ? h('button', { type: 'button', onclick: () => setStatus(c, c.status === 'active' ? 'paused' : 'active', reload) },
      c.status === 'active' ? 'Pause' : 'Resume', hidden(` ${c.name}`)) : null,
    !ended ? h('button', { type: 'button', onclick: () => issueDialog(c) }, 'Issue codes', hidden(` for ${c.name}`)) : null,
    h('a', { href: `#/accounts/${c.account_id}` }, 'Ledger', hidden(` of ${c.name}`)));
}

function switchDialog(c, client, reload) {
  const toShared = c.budget_mode === 'isolated';
  const effect = toShared
    ? `${c.name}'s remaining balance of ${money(c.balance)} returns to ${client.name} now, in the same step. `
      + `Afterwards its redemptions draw on ${client.name}'s balance (${money(client.balance + c.balance)}).`
    : `Nothing moves now. ${c.name} starts with its own balance of $0.00 and its redemptions draw only on it: `
      + 'allocate credit to it before it can redeem again.';
  dialog({
    title: `Switch ${c.name} to a ${toShared ? 'shared' : 'isolated'} budget`,
    describeText: effect,
    submitLabel: toShared ? 'Switch to shared' : 'Switch to isolated',
    fields: () => [],
    submit: async () => {
      await api(`/campaigns/${c.id}`, { method: 'PATCH', json: { budget_mode: toShared ? 'shared' : 'isolated' } });
      return toShared
        ? `${c.name} now shares ${client.name}'s budget; ${money(c.balance)} returned to ${client.name}.`
        : `${c.name} now has an isolated budget of $0.00.`;
    },
    onDone: reload,
  });
}

async function setStatus(c, status, reload) {
  try {
    await api(`/campaigns/${c.id}`, { method: 'PATCH', json: { status } });
    announce(`${c.name} is ${status === 'active' ? 'running again' : 'paused'}.`);
    reload();
  } catch (error) {
    if (error.status !== 401) announce(`Could not change ${c.name}: ${error.message}`);
  }
}

function issueDialog(c) {
  const brands = api('/brands?limit=500');
  const select = h('select', { name: 'card', required: true }, h('option', { value: '' }, 'Loading brands…'));
  brands.then((b) => replace(select, b.items.flatMap((brand) => brand.denominations.map((d) =>
    h('option', { value: JSON.stringify([brand.id, d, brand.name]) }, `${brand.name} ${money(d)}`)))))
    .catch((error) => replace(select, h('option', { value: '' }, `Brands could not be loaded: ${error.message}`)));
  dialog({
    title: `Issue redemption codes for ${c.name}`,
    describeText: 'Each code is shown once, here, and can be downloaded as CSV: only its hash is stored.',
    submitLabel: 'Issue codes',
    fields: () => [
      field('Card', select),
      field('How many', h('input', { name: 'count', inputmode: 'numeric', value: '10', required: true }), '1 to 10,000.'),
    ],
    submit: async (form) => {
      const [brandId, denomination, brandName] = JSON.parse(form.elements.card.value || 'null') || [];
      if (!brandId) throw new Error('Choose a card.');
      const n = Number(form.elements.count.value);
      if (!Number.isInteger(n) || n < 1 || n > 10000) throw new Error('Issue from 1 to 10,000 codes at a time.');
      const issued = await api(`/campaigns/${c.id}/codes`, { method: 'POST', json: { brand_id: brandId, denomination, count: n } });
      showCodes(c, `${brandName} ${money(denomination)}`, issued);
      return `Issued ${count(issued.count)} codes for ${c.name}.`;
    },
  });
}

function showCodes(c, card, issued) {
  const quoted = (text) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  const csv = ['code,campaign,card', ...issued.codes.map((code) => [code, c.name, card].map(quoted).join(','))].join('\n');
  const download = () => {
    const url = URL.createObjectURL(new Blob([`${csv}\n`], { type: 'text/csv' }));
    const a = h('a', { href: url, download: `codes-${issued.batch_id}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  dialog({
    title: `${count(issued.count)} codes for ${c.name}`,
    describeText: 'Download them now: once this window is closed they cannot be shown again.',
    submitLabel: 'Done',
    fields: () => [
      h('button', { type: 'button', class: 'primary', onclick: download }, 'Download CSV'),
      h('ol', { class: 'codes', 'aria-label': 'Issued codes' }, issued.codes.slice(0, 200).map((code) => h('li', {}, h('code', {}, code)))),
      issued.codes.length > 200 ? h('p', {}, `…and ${count(issued.codes.length - 200)} more in the CSV.`) : null,
    ],
    submit: async () => null,
  });
}

function redemptionList(clientId) {
  let totals = null;
  const totalsNode = h('div', { class: 'stats' });
  const list = paged(async (cursor) => {
    const page = await api(`/redemptions${query({ client_id: clientId, limit: 50, cursor })}`);
    totals = page.totals;
    replace(totalsNode,
      stat('Redemptions', count(totals.redemptions)),
      stat('Charged', money(totals.charged)),
      stat('Pending', count(totals.pending)),
      stat('Failed', count(totals.failed)));
    return page;
  }, (items) => table('Redemptions', [
    { label: 'When', value: (r) => time(r.created_at) },
    { label: 'Card', value: (r) => `${r.brand_name} ${money(r.denomination)}` },
    { label: 'Code', value: (r) => r.redemption_code || '—' },
    { label: 'Status', value: (r) => r.status },
    { label: 'Source', value: (r) => r.source || '—' },
    { label: 'Charged', value: (r) => money(r.amount_charged), numeric: true },
  ], items, { emptyText: 'No redemptions yet.' }));
  return h('div', {}, totalsNode, list);
}
