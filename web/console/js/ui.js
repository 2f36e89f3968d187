// DOM building, money and dates as people read them, the loading / empty / error states, and dialogs.
// Text from the API is only ever set as text (never as HTML), so nothing it holds can run here.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  // A control whose visible text is short ("Fund") says what it acts on to assistive technology ("Fund Acme"):
  // a child span of class label-suffix becomes part of its aria-label rather than hidden text.
  const suffix = node.querySelector(':scope > .label-suffix');
  if (suffix) {
    node.setAttribute('aria-label', node.textContent.trim());
    suffix.remove();
  }
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
export const money = (dollars) => (dollars === null || dollars === undefined ? '—' : usd.format(dollars));
export const count = (n) => (n === null || n === undefined ? '—' : new Intl.NumberFormat('en-US').format(n));

const when = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short' });
export const time = (iso) => (iso ? when.format(new Date(iso)) : '—');

/** Dollars typed by a person, as the API takes them: at most 2 decimals, above 0, at most 1,000,000,000. */
export function parseAmount(text) {
  const cleaned = String(text).trim().replace(/[$,\s]/g, '');
  if (!/^\d+(\.\d{1,2})?$/.test(cleaned)) {
    return { error: 'Enter an amount in dollars, with at most 2 decimals (for example 250 or 99.50).' };
  }
  const value = Number(cleaned);
  if (value <= 0) return { error: 'The amount must be more than $0.' };
  if (value > 1e9) return { error: 'The amount can be at most $1,000,000,000.' };
  return { value };
}

// --- states ---------------------------------------------------------------------------------------------

export const loading = (what = 'Loading…') => h('p', { class: 'state loading', 'aria-busy': 'true' }, what);
export const empty = (text) => h('p', { class: 'state empty' }, text);

export function failure(error, retry) {
  return h(
    'div',
    { class: 'state error', role: 'alert' },
    h('p', {}, describe(error)),
    retry ? h('button', { type: 'button', onclick: retry }, 'Try again') : null,
  );
}

/** What a refusal means, in words: the API's own message, with a hint where one helps. */
export function describe(error) {
  if (!error || !error.code) return String(error && error.message ? error.message : error);
  const hints = {
    insufficient_credit: 'There is not enough credit in the account it comes from.',
    invalid_hierarchy: 'Credit moves only between an account and its direct parent or child.',
    forbidden: 'Your memberships do not allow this.',
    not_found: 'It does not exist, or your memberships do not let you see it.',
    network: 'Check your connection and try again.',
    outcome_unknown: 'Check the ledger before trying again.',
  };
  const hint = hints[error.code];
  return hint && !error.message.includes(hint) ? `${error.message} ${hint}` : error.message;
}

/** A section that shows loading, then what `render` makes of `load()`, or the error with a retry. */
export function section(title, load, render, { level = 'h2', actions = null, id = null } = {}) {
  const body = h('div', { class: 'section-body' });
  const heading = h(level, { id: id ? `${id}-title` : null }, title);
  const node = h('section', { class: 'card', 'aria-labelledby': id ? `${id}-title` : null, id },
    h('div', { class: 'section-head' }, heading, actions), body);
  const run = async () => {
    replace(body, loading());
    body.setAttribute('aria-busy', 'true');
    try {
      const data = await load();
      replace(body, render(data, run));
    } catch (error) {
      if (error && error.status === 401) return;
      replace(body, failure(error, run));
    } finally {
      body.removeAttribute('aria-busy');
    }
  };
  node.reload = run;
  run();
  return node;
}

export function table(caption, columns, rows, { emptyText = 'Nothing yet.' } = {}) {
  if (!rows.length) return empty(emptyText);
  return h(
    'div',
    { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)))),
      h('tbody', {}, rows.map((row) =>
        h('tr', {}, columns.map((c, i) => {
          const cell = c.value(row);
          return i === 0 ? h('th', { scope: 'row' }, cell) : h('td', { class: c.numeric ? 'num' : null, 'data-label': c.label }, cell);
        })))),
    ),
  );
}

export function stat(label, value, note) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value),
    note ? h('div', { class: 'stat-note' }, note) : null);
}

// --- status messages ------------------------------------------------------------------------------------

export function announce(text) {
  const status = document.getElementById('status');
  replace(status, text ? h('p', {}, text) : null);
}

// --- dialogs --------------------------------------------------------------------------------------------

let dialogs = 0;

/**
 * A modal dialog with a form. `fields` builds the form's content; `submit(form)` does the work and resolves to a
 * message for the status line (or throws an API error, shown in the dialog, which stays open).
 */
export function dialog({ title, fields, submitLabel = 'Confirm', submit, describeText = null, onDone = null }) {
  dialogs += 1;
  const titleId = `dialog-${dialogs}-title`;
  const errorBox = h('div', { class: 'dialog-error', role: 'alert' });
  const submitButton = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const form = h('form', { method: 'dialog', novalidate: true });
  const node = h('dialog', { 'aria-labelledby': titleId },
    h('h2', { id: titleId }, title),
    describeText ? h('p', {}, describeText) : null,
    form);
  append(form, [fields(form), errorBox, h('div', { class: 'dialog-actions' },
    h('button', { type: 'button', onclick: () => node.close() }, 'Cancel'), submitButton)]);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(errorBox);
    submitButton.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const message = await submit(form);
      if (message === false) return;
      node.close();
      if (message) announce(message);
      if (onDone) onDone();
    } catch (error) {
      if (error && error.status === 401) { node.close(); return; }
      replace(errorBox, h('p', {}, describe(error)), error && error.details ? details(error.details) : null);
    } finally {
      submitButton.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  node.addEventListener('close', () => node.remove());
  document.body.append(node);
  node.showModal();
  return node;
}

function details(list) {
  if (!Array.isArray(list) || !list.length) return null;
  return h('ul', { class: 'details' }, list.slice(0, 50).map((d) => h('li', {},
    d.line !== undefined ? `Line ${d.line}: ${d.message}` : d.field ? `${d.field}: ${d.message}` : d.message)));
}

export { details as errorDetails };

/** A labelled input; the label is tied to it, and its hint is read with it. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintNode = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute('aria-describedby', hintNode.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintNode);
}

/** A link-styled button that goes to a route of the console. */
export const link = (href, text, label) => h('a', { href, 'aria-label': label || null }, text);

/**
 * A list the API pages: the first page, then "Show more" for each next one. `fetchPage(cursor)` answers
 * `{items, next_cursor}`; `render(items)` draws every item loaded so far.
 */
export function paged(fetchPage, render, { moreLabel = 'Show more' } = {}) {
  const node = h('div', { class: 'paged' });
  const items = [];
  let cursor = null;
  const more = h('button', { type: 'button', class: 'more' }, moreLabel);
  const draw = () => replace(node, render(items), cursor ? more : null);
  const next = async () => {
    more.disabled = true;
    try {
      const page = await fetchPage(cursor);
      items.push(...page.items);
      cursor = page.next_cursor;
      draw();
    } catch (error) {
      if (error && error.status === 401) return;
      replace(node, render(items), failure(error, next));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', next);
  replace(node, loading());
  next();
  return node;
}

export const query = (params) => {
  const kept = Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== '');
  return kept.length ? `?${new URLSearchParams(kept)}` : '';
};
