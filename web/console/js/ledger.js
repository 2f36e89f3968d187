// An account's ledger: its entries newest first, a page at a time, each with its counter-account and the balance
// after it: the audit trail. The API decides which accounts a person may read (404 otherwise).

import { accountName, api, nameAccount } from './api.js';
import { empty, failure, h, loading, money, query, replace, section, stat, table, time } from './ui.js';

const PAGE = 25;
const KINDS = { allocation: 'Allocation', reclaim: 'Reclaim', redemption: 'Redemption', refund: 'Refund', reversal: 'Reversal' };

export function ledgerScreen(accountId) {
  const id = encodeURIComponent(accountId);
  const title = h('h1', {}, 'Ledger');
  const loaded = api(`/accounts/${id}`).then((a) => {
    if (a.parent_account_id) parents.set(a.parent_account_id, `parent ${PARENT_OF[a.owner_type] || 'account'}`);
    return a;
  });
  const account = section('Account', () => loaded, (a) => {
    const name = accountName(a.account_id) || describeOwner(a);
    title.textContent = `Ledger: ${name}`;
    document.title = `Ledger: ${name} · Gift card console`;
    return h('div', { class: 'stats' },
      stat('Balance', money(a.balance)),
      stat('Account of', accountName(a.account_id) ? `${a.owner_type}: ${accountName(a.account_id)}` : describeOwner(a)),
      stat('Opened', time(a.created_at)));
  }, { id: 'account' });
  // The entries wait for the account, whose parent they may need to name.
  const listed = section('Entries, newest first', () => loaded.catch(() => null), () => entries(accountId), { id: 'entries' });
  return [title, account, listed];
}

function describeOwner(a) {
  if (a.owner_type === 'system') return `system (${a.system_name})`;
  if (a.owner_type === 'platform') return 'the platform';
  return `${a.owner_type}${a.owner_id ? ` ${a.owner_id.slice(0, 8)}` : ''}`;
}

/** Pages of entries: Older follows next_cursor; Newer goes back to the cursor the page before came from. */
function entries(accountId) {
  const node = h('div', {});
  const cursors = [null];
  let index = 0;
  const show = async () => {
    replace(node, loading());
    try {
      const page = await api(`/accounts/${encodeURIComponent(accountId)}/transactions${query({ limit: PAGE, cursor: cursors[index] })}`);
      if (page.next_cursor && cursors.length === index + 1) cursors.push(page.next_cursor);
      const names = await counterNames(page.items);
      const nav = h('nav', { class: 'pager', 'aria-label': 'Ledger pages' },
        h('button', { type: 'button', disabled: index === 0, onclick: () => { index -= 1; show(); } }, 'Newer'),
        h('span', {}, `Page ${index + 1}`),
        h('button', { type: 'button', disabled: !page.next_cursor, onclick: () => { index += 1; show(); } }, 'Older'));
      replace(node, page.items.length || index ? [entryTable(page.items, names), nav] : empty('No entries yet: no credit has moved in or out of this account.'));
    } catch (error) {
      if (error && error.status === 401) return;
      replace(node, failure(error, show));
    }
  };
  show();
  return node;
}

function entryTable(items, names) {
  return table('Ledger entries', [
    { label: 'When', value: (e) => time(e.created_at) },
    { label: 'Kind', value: (e) => KINDS[e.kind] || e.kind },
    { label: 'Amount', value: (e) => h('span', { class: e.amount < 0 ? 'out' : 'in' }, `${e.amount > 0 ? '+' : ''}${money(e.amount)}`), numeric: true },
    { label: 'Counter-account', value: (e) => h('a', { href: `#/accounts/${e.counter_account_id}` }, names[e.counter_account_id]) },
    { label: 'Balance after', value: (e) => money(e.balance_after), numeric: true },
    { label: 'Notes', value: (e) => e.notes || '' },
    { label: 'By', value: (e) => e.initiator },
  ], items, { emptyText: 'No entries on this page.' });
}

const resolved = new Map();
// An account's parent, which its admin may not be allowed to read, is named for what it is.
const parents = new Map();
const PARENT_OF = { agency: 'platform', client: 'agency', campaign: 'client' };

/** The name of each counter-account: one the console has shown, else what the API says of it, else its id. */
async function counterNames(items) {
  const names = {};
  await Promise.all([...new Set(items.map((e) => e.counter_account_id))].map(async (counter) => {
    let name = accountName(counter) || resolved.get(counter);
    if (!name) {
      try {
        const a = await api(`/accounts/${encodeURIComponent(counter)}`);
        name = describeOwner(a);
        if (a.owner_type === 'platform') nameAccount(counter, 'Platform');
      } catch (error) {
        if (error && error.status === 401) throw error;
        name = parents.get(counter) || `account ${counter.slice(0, 8)}…`;
      }
      resolved.set(counter, name);
    }
    names[counter] = name;
  }));
  return names;
}
