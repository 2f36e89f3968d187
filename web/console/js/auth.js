// Signing in. Locally (`config.auth === 'local'`) a bearer token from `make dev`'s sign-in links (`#token=...`,
// never sent to any server in the URL) or pasted from `giftcard token SUB`. Deployed, Cognito's hosted UI with the
// authorization code flow and PKCE (S256): the code comes back to this page, which exchanges it, with the verifier
// only this tab knows, for tokens. The ID token is the bearer token: its `sub` is the person, its `aud` the console's
// app client, which the API's JWT authorizer accepts.

const TOKEN = 'giftcard.console.token';
const RETURN_TO = 'giftcard.console.return';
const PKCE = 'giftcard.console.pkce';

let config = { auth: 'local', api: '' };

export function configure(loaded) {
  config = { ...config, ...loaded };
}

export const apiBase = () => (config.api || '').replace(/\/$/, '');
export const mode = () => config.auth;

export function token() {
  const value = sessionStorage.getItem(TOKEN);
  if (!value) return null;
  const claims = decode(value);
  if (claims && claims.exp && claims.exp * 1000 <= Date.now()) {
    sessionStorage.removeItem(TOKEN);
    return null;
  }
  return value;
}

/** The token's claims, read without verifying it: only the API's authorizer decides what the token is worth. */
export function decode(value) {
  try {
    const payload = value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

export function useToken(value) {
  sessionStorage.setItem(TOKEN, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  if (config.auth === 'cognito') {
    const { domain, client_id: clientId, logout_uri: logoutUri } = config.cognito;
    const query = new URLSearchParams({ client_id: clientId, logout_uri: logoutUri });
    location.assign(`${domain}/logout?${query}`);
    return;
  }
  location.hash = '#/';
  location.reload();
}

/** The session ended (the API answered 401): forget the token, and come back here after signing in again. */
export function expired() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.setItem(RETURN_TO, location.hash || '#/');
}

export function takeReturnTo() {
  const target = sessionStorage.getItem(RETURN_TO);
  sessionStorage.removeItem(RETURN_TO);
  return target;
}

/**
 * Whatever the page was opened with that signs in: a local sign-in link's `#token=`, or Cognito's `?code=&state=`.
 * Answers an error message when a sign-in came back refused.
 */
export async function completeSignIn() {
  if (location.hash.startsWith('#token=')) {
    useToken(decodeURIComponent(location.hash.slice('#token='.length)));
    history.replaceState(null, '', `${location.pathname}#/`);
    return null;
  }
  const query = new URLSearchParams(location.search);
  if (config.auth !== 'cognito' || !(query.has('code') || query.has('error'))) return null;
  const pending = JSON.parse(sessionStorage.getItem(PKCE) || 'null');
  sessionStorage.removeItem(PKCE);
  history.replaceState(null, '', location.pathname + (pending && pending.hash ? pending.hash : '#/'));
  if (query.has('error')) return `Sign-in was refused: ${query.get('error_description') || query.get('error')}.`;
  if (!pending || pending.state !== query.get('state')) return 'That sign-in did not start here. Sign in again.';
  const { domain, client_id: clientId, redirect_uri: redirectUri } = config.cognito;
  const answer = await fetch(`${domain}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: clientId,
      code: query.get('code'),
      redirect_uri: redirectUri,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await answer.json().catch(() => ({}));
  if (!answer.ok || !tokens.id_token) return 'Sign-in could not be completed. Sign in again.';
  useToken(tokens.id_token);
  return null;
}

/** Cognito's hosted UI, with a fresh PKCE verifier and state kept in this tab only. */
export async function startSignIn(returnTo) {
  const verifier = randomText(64);
  const state = randomText(24);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state, hash: returnTo || '#/' }));
  const { domain, client_id: clientId, redirect_uri: redirectUri, scope } = config.cognito;
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: scope || 'openid email',
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
  });
  location.assign(`${domain}/oauth2/authorize?${query}`);
}

function randomText(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
