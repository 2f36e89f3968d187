// The allocate and reclaim dialogs every screen uses: an amount checked as the API checks it, the API's refusal
// shown in words, and the balances after the movement in the status line.

import { mover, nameAccount } from './api.js';
import { dialog, field, h, money, parseAmount } from './ui.js';

/**
 * Move credit between a parent and a direct child. `from` and `to` are `{name, account_id, balance}`;
 * `direction` is 'allocation' (down) or 'reclaim' (up).
 */
export function moveDialog({ direction, from, to, title, submitLabel, onDone }) {
  const send = mover();
  nameAccount(from.account_id, from.name);
  nameAccount(to.account_id, to.name);
  const verb = direction === 'reclaim' ? 'Reclaim' : 'Allocate';
  return dialog({
    title: title || `${verb} credit`,
    describeText: `From ${from.name} (${from.unlimited ? 'unlimited' : `balance ${money(from.balance)}`}) `
      + `to ${to.name} (balance ${money(to.balance)}).`,
    submitLabel: submitLabel || verb,
    fields: () => [
      field('Amount (USD)', h('input', { name: 'amount', inputmode: 'decimal', autocomplete: 'off', required: true }),
        from.unlimited ? 'At most 2 decimals.' : `Up to ${money(from.balance)}; at most 2 decimals.`),
      field('Notes (optional)', h('input', { name: 'notes', maxlength: '500', autocomplete: 'off' })),
    ],
    submit: async (form) => {
      const amount = parseAmount(form.elements.amount.value);
      if (amount.error) {
        form.elements.amount.setAttribute('aria-invalid', 'true');
        throw new Error(amount.error);
      }
      form.elements.amount.removeAttribute('aria-invalid');
      const notes = form.elements.notes.value.trim();
      const answer = await send(direction, from.account_id, to.account_id, amount.value, notes);
      return `${verb === 'Reclaim' ? 'Reclaimed' : 'Allocated'} ${money(amount.value)}: ${from.name} now has `
        + `${money(answer.fromAccountBalance)}, ${to.name} ${money(answer.toAccountBalance)}.`;
    },
    onDone,
  });
}
