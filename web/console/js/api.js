// The API, as the console calls it: bearer token, JSON, the contract's error envelope turned into ApiError, and a
// 401 that sends the person to sign in again. Every number the console shows comes from here.

import { apiBase, expired, token } from './auth.js';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let onExpired = () => {};
export function whenExpired(callback) {
  onExpired = callback;
}

export async function api(path, { method = 'GET', json, body, contentType, headers = {} } = {}) {
  const sent = { ...headers };
  const bearer = token();
  if (bearer) sent.Authorization = `Bearer ${bearer}`;
  if (json !== undefined) {
    sent['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (contentType) {
    sent['Content-Type'] = contentType;
  }
  let answer;
  try {
    answer = await fetch(apiBase() + path, { method, headers: sent, body, cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'The API could not be reached.');
  }
  const text = await answer.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (answer.status === 401) {
    expired();
    onExpired();
    throw new ApiError(401, 'unauthorized', 'Your session has ended. Sign in again.');
  }
  if (!answer.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(answer.status, error.code || `http_${answer.status}`,
      error.message || `The API answered ${answer.status}.`, error.details);
  }
  return data;
}

/**
 * A credit movement. The same Idempotency-Key goes with the same movement, so sending it again (after a network
 * error or an unknown outcome) can never move the credit twice; another movement gets a new key.
 */
export function mover() {
  let sent = null;
  let key = null;
  return (direction, fromAccountId, toAccountId, amount, notes) => {
    const path = direction === 'reclaim' ? '/reclaim-credit' : '/allocate-credit';
    const json = { fromAccountId, toAccountId, amount, ...(notes ? { notes } : {}) };
    const fingerprint = JSON.stringify([path, json]);
    if (fingerprint !== sent) {
      sent = fingerprint;
      key = crypto.randomUUID();
    }
    return api(path, { method: 'POST', json, headers: { 'Idempotency-Key': key } });
  };
}

// --- names of accounts ----------------------------------------------------------------------------------
// A ledger entry names its counter-account by id. The screens record the names of the accounts they show, so the
// ledger can say "Acme Marketing" rather than an id; an account the person has not seen stays an id.

const NAMES = 'giftcard.console.accounts';

export function nameAccount(accountId, name) {
  const names = JSON.parse(sessionStorage.getItem(NAMES) || '{}');
  if (names[accountId] === name) return;
  names[accountId] = name;
  sessionStorage.setItem(NAMES, JSON.stringify(names));
}

export function accountName(accountId) {
  const names = JSON.parse(sessionStorage.getItem(NAMES) || '{}');
  return names[accountId] || null;
}
