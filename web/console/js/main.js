// The console: sign in, learn from GET /me what the person administers, and route between the screens.
// Routes live in the URL's fragment (#/admin, #/agencies/ID, #/clients/ID, #/accounts/ID), so every screen can be
// bookmarked and reloaded, and the static host needs no rewrite rules.

import { brandsScreen, alertsScreen, overview, poolsScreen } from './admin.js';
import { agencyScreen } from './agency.js';
import { api, nameAccount, whenExpired } from './api.js';
import * as auth from './auth.js';
import { clientScreen } from './client.js';
import { ledgerScreen } from './ledger.js';
import { announce, empty, failure, field, h, loading, replace } from './ui.js';

const main = () => document.getElementById('main');
let me = null;

async function boot() {
  try {
    const config = await fetch('config.json', { cache: 'no-store' }).then((r) => r.json());
    auth.configure(config);
  } catch {
    replace(main(), failure(new Error('The console could not read its configuration (config.json).')));
    return;
  }
  whenExpired(() => signInScreen('Your session has ended. Sign in again to go on where you were.'));
  let problem = null;
  try {
    problem = await auth.completeSignIn();
  } catch {
    problem = 'Sign-in could not be completed. Sign in again.';
  }
  if (!auth.token()) {
    signInScreen(problem);
    return;
  }
  const back = auth.takeReturnTo();
  if (back && back !== location.hash) history.replaceState(null, '', location.pathname + back);
  window.addEventListener('hashchange', route);
  await start();
}

async function start() {
  replace(main(), loading('Signing in…'));
  try {
    me = await api('/me');
  } catch (error) {
    if (error.status !== 401) replace(main(), failure(error, start));
    return;
  }
  for (const a of me.agencies) nameAccount(a.account_id, a.name);
  for (const c of me.clients) nameAccount(c.account_id, c.name);
  navigation();
  route();
}

function navigation() {
  const links = [];
  if (me.platform_admin) {
    links.push(['#/admin', 'Overview'], ['#/admin/alerts', 'Alerts'], ['#/admin/pools', 'Pools'], ['#/admin/brands', 'Brands']);
  }
  for (const a of me.agencies) links.push([`#/agencies/${a.id}`, a.name]);
  for (const c of me.clients) links.push([`#/clients/${c.id}`, c.name]);
  replace(document.getElementById('nav'), h('ul', {}, links.map(([href, text]) => h('li', {}, h('a', { href }, text)))));
  replace(document.getElementById('who'),
    h('span', { class: 'subject', title: me.subject }, roleOf(me)),
    h('a', { href: `${auth.apiBase()}/docs`, class: 'docs' }, 'API docs'),
    h('button', { type: 'button', onclick: auth.signOut }, 'Sign out'));
}

function roleOf(person) {
  if (person.platform_admin) return 'Platform admin';
  if (person.agencies.length) return 'Agency admin';
  if (person.clients.length) return 'Client admin';
  return 'Signed in';
}

function home() {
  if (me.platform_admin) return '#/admin';
  if (me.agencies.length) return `#/agencies/${me.agencies[0].id}`;
  if (me.clients.length) return `#/clients/${me.clients[0].id}`;
  return null;
}

const ROUTES = [
  [/^#\/admin$/, () => overview()],
  [/^#\/admin\/alerts$/, (_, params) => alertsScreen(params)],
  [/^#\/admin\/pools$/, () => poolsScreen()],
  [/^#\/admin\/brands$/, () => brandsScreen()],
  [/^#\/agencies\/([^/]+)$/, ([id]) => agencyScreen(id)],
  [/^#\/clients\/([^/]+)$/, ([id]) => clientScreen(id)],
  [/^#\/accounts\/([^/]+)$/, ([id]) => ledgerScreen(id)],
];

function route() {
  if (!me) return;
  const [path, search] = (location.hash || '#/').split('?');
  if (path === '#/' || path === '#' || path === '') {
    const target = home();
    if (target) {
      location.replace(target);
      return;
    }
    show([h('h1', {}, 'No access yet'), empty('You are signed in, but no agency or client has made you an admin yet. '
      + 'Ask your platform admin to add you, then sign in again.')]);
    return;
  }
  for (const [pattern, screen] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      announce('');
      show(screen(match.slice(1).map(decodeURIComponent), new URLSearchParams(search || '')));
      markCurrent(path);
      return;
    }
  }
  show([h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '#/' }, 'Go to your start page'))]);
}

function show(content) {
  replace(main(), content);
  document.title = `${(main().querySelector('h1') || {}).textContent || 'Console'} · Gift card console`;
  main().focus();
}

function markCurrent(path) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function signInScreen(message) {
  me = null;
  replace(document.getElementById('nav'));
  replace(document.getElementById('who'));
  const notice = message ? h('p', { class: 'warning', role: 'alert' }, message) : null;
  if (auth.mode() === 'cognito') {
    replace(main(), h('div', { class: 'card sign-in' }, h('h1', {}, 'Sign in'), notice,
      h('p', {}, 'Sign in with your account to manage credit, campaigns and cards.'),
      h('button', { type: 'button', class: 'primary', onclick: () => auth.startSignIn(auth.takeReturnTo() || location.hash) }, 'Sign in')));
    main().focus();
    return;
  }
  const input = h('textarea', { name: 'token', rows: '4', required: true, autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { onsubmit: (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    auth.useToken(input.value);
    const back = auth.takeReturnTo();
    location.hash = back || '#/';
    location.reload();
  } },
  field('Bearer token', input, 'Run `make dev` and open one of the sign-in links it prints, or paste a token from `giftcard token SUBJECT`.'),
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  replace(main(), h('div', { class: 'card sign-in' }, h('h1', {}, 'Sign in (local)'), notice, form));
  main().focus();
}

boot();
