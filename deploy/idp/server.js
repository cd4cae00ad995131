// The local OpenID Connect provider for dx-talent (development, demo and tests).
//
// Built on `oidc-provider` (certified OpenID Connect implementation). It serves discovery, JWKS, the
// authorization code flow with PKCE (S256, required) for people, client credentials for programs,
// RP-initiated logout and refresh tokens. Access tokens are RS256-signed JWTs for the dx-talent
// resource (audience DX_IDP_AUDIENCE) carrying dx_role, dx_department and dx_staff_id; personal names
// stay out of access tokens (they are only in the ID token / userinfo under the `profile` scope).
//
// Configuration (environment):
//   DX_IDP_ISSUER        issuer URL (default http://127.0.0.1:<port>)
//   DX_IDP_PORT          port (default 8090); DX_IDP_HOST bind address (default 127.0.0.1)
//   DX_IDP_AUDIENCE      access-token audience (default dx-talent)
//   DX_IDP_DATA_DIR      where the signing keys and cookie keys are kept (default .run/idp)
//   DX_IDP_USERS_FILE    demo users, written by `python -m dx_tools.idp users` (default .run/idp/users.json)
//   DX_IDP_CLIENTS_FILE  clients (default clients.json next to this file)
//   DX_IDP_CLIENT_SECRET_<ID>  overrides a client's secret (ID upper-cased, '-' as '_')
//   DX_IDP_PORTAL_REDIRECTS, DX_IDP_PORTAL_POST_LOGOUT_REDIRECTS  space-separated portal URLs
//   DX_IDP_ACCESS_TOKEN_TTL  seconds (default 900)
//   DX_IDP_TEST_MODE=1   test clients and `test:<role>:<department|->:<staff id|->` logins with
//                        DX_IDP_TEST_PASSWORD; never set by `./dx up`

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const env = process.env;
const PORT = Number(env.DX_IDP_PORT || 8090);
const ISSUER = env.DX_IDP_ISSUER || `http://127.0.0.1:${PORT}`;
const HOST = env.DX_IDP_HOST || '127.0.0.1';
const AUDIENCE = env.DX_IDP_AUDIENCE || 'dx-talent';
// The resource indicator (RFC 8707) naming the dx-talent APIs; tokens for it carry aud=AUDIENCE.
const RESOURCE = env.DX_IDP_RESOURCE || `urn:${AUDIENCE}`;
const DATA_DIR = path.resolve(env.DX_IDP_DATA_DIR || '.run/idp');
const USERS_FILE = path.resolve(env.DX_IDP_USERS_FILE || path.join(DATA_DIR, 'users.json'));
const CLIENTS_FILE = path.resolve(env.DX_IDP_CLIENTS_FILE || path.join(HERE, 'clients.json'));
const ACCESS_TOKEN_TTL = Number(env.DX_IDP_ACCESS_TOKEN_TTL || 900);
const TEST_MODE = env.DX_IDP_TEST_MODE === '1';
const TEST_PASSWORD = env.DX_IDP_TEST_PASSWORD || '';

const DX_SCOPES = [
  'dx.roster.import',
  'dx.nominations.write',
  'dx.nominations.read',
  'dx.training.write',
  'dx.training.read',
  'dx.fy.close',
  'dx.progress.read',
  'dx.reports.read',
  'dx.audit.read',
  'dx.contacts.read',
  'dx.ops',
];
const ROLES = new Set(['dx_office', 'hr_office', 'info_policy', 'department', 'trainee']);

function log(event, fields = {}) {
  // One JSON line per event; never a password, secret, token or personal name.
  process.stdout.write(`${JSON.stringify({ event, service: 'idp', ...fields })}\n`);
}

function writePrivate(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(data, null, 2), { mode: 0o600 });
  fs.renameSync(temporary, file);
}

// Signing keys: made once and kept, so tokens stay valid across restarts.
async function loadSigningKeys() {
  const file = path.join(DATA_DIR, 'jwks.json');
  if (fs.existsSync(file)) {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = 'RS256';
  jwk.use = 'sig';
  const jwks = { keys: [jwk] };
  writePrivate(file, jwks);
  log('idp.signing_key_created', { kid: jwk.kid });
  return jwks;
}

function loadCookieKeys() {
  const file = path.join(DATA_DIR, 'cookie-keys.json');
  if (fs.existsSync(file)) {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  const keys = [crypto.randomBytes(32).toString('base64url'), crypto.randomBytes(32).toString('base64url')];
  writePrivate(file, keys);
  return keys;
}

function loadClients() {
  const { clients } = JSON.parse(fs.readFileSync(CLIENTS_FILE, 'utf8'));
  const result = [];
  for (const entry of clients) {
    if (entry.test_only && !TEST_MODE) continue;
    const secretVariable = `DX_IDP_CLIENT_SECRET_${entry.client_id.toUpperCase().replaceAll('-', '_')}`;
    const fromList = (name, fallback) => (name && env[name] ? env[name].split(/\s+/).filter(Boolean) : fallback);
    const scopes = entry.scopes === 'all' ? DX_SCOPES : entry.scopes;
    const oidcScopes = entry.response_types.length ? ['openid', 'profile'] : [];
    const client = {
      client_id: entry.client_id,
      client_name: entry.client_name,
      grant_types: entry.grant_types,
      response_types: entry.response_types,
      redirect_uris: fromList(entry.redirect_uris_env, entry.redirect_uris),
      token_endpoint_auth_method: entry.token_endpoint_auth_method,
      scope: [...oidcScopes, ...scopes].join(' '),
      dx_first_party: Boolean(entry.first_party),
    };
    if (entry.post_logout_redirect_uris) {
      client.post_logout_redirect_uris = fromList(entry.post_logout_redirect_uris_env, entry.post_logout_redirect_uris);
    }
    if (entry.token_endpoint_auth_method !== 'none') {
      client.client_secret = env[secretVariable] || entry.client_secret;
    }
    if (entry.dx_role) client.dx_role = entry.dx_role;
    if (entry.access_token_ttl) client.dx_access_token_ttl = entry.access_token_ttl;
    result.push(client);
  }
  return result;
}

// Demo users: [{username, password_hash, sub, dx_role, dx_department, dx_staff_id, name}], the
// password hashed with scrypt as "scrypt$N$r$p$<salt b64url>$<hash b64url>".
function loadUsers() {
  if (!fs.existsSync(USERS_FILE)) {
    log('idp.no_users_file', { path: USERS_FILE });
    return [];
  }
  const users = JSON.parse(fs.readFileSync(USERS_FILE, 'utf8'));
  return Array.isArray(users) ? users : users.users;
}

const users = loadUsers();
const usersByName = new Map(users.map((user) => [user.username, user]));
const accountsBySub = new Map(users.map((user) => [user.sub, user]));

function verifyPassword(password, stored) {
  const parts = String(stored || '').split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts;
  const expected = Buffer.from(hash, 'base64url');
  const actual = crypto.scryptSync(String(password), Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * Number(n) * Number(r),
  });
  return crypto.timingSafeEqual(actual, expected);
}

// A dummy hash, so an unknown user name costs the same as a wrong password.
const DUMMY_HASH = (() => {
  const salt = crypto.randomBytes(16);
  const hash = crypto.scryptSync('not-a-password', salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$16384$8$1$${salt.toString('base64url')}$${hash.toString('base64url')}`;
})();

function testAccount(username, password) {
  // test:<role>:<department or ->:<staff id or ->
  if (!TEST_MODE || !TEST_PASSWORD || !username.startsWith('test:')) return undefined;
  const given = Buffer.from(String(password));
  const wanted = Buffer.from(TEST_PASSWORD);
  if (given.length !== wanted.length || !crypto.timingSafeEqual(given, wanted)) return undefined;
  const parts = username.split(':');
  if (parts.length !== 4 || !ROLES.has(parts[1])) return undefined;
  const [, role, department, staffId] = parts;
  const account = {
    sub: `test-${role}-${department}-${staffId}`,
    dx_role: role,
    dx_department: department === '-' ? null : department,
    dx_staff_id: staffId === '-' ? null : staffId,
    name: `Test ${role}`,
  };
  accountsBySub.set(account.sub, account);
  return account;
}

// Password guessing: after MAX_FAILURES wrong passwords for a user name within FAILURE_WINDOW_MS, that
// name is refused (with the same message) until the window has passed.
const MAX_FAILURES = 10;
const FAILURE_WINDOW_MS = 15 * 60 * 1000;
const failures = new Map();

function lockedOut(username) {
  const entry = failures.get(username);
  if (!entry) return false;
  if (Date.now() - entry.since > FAILURE_WINDOW_MS) {
    failures.delete(username);
    return false;
  }
  return entry.count >= MAX_FAILURES;
}

function authenticate(username, password) {
  if (lockedOut(username)) return undefined;
  const test = testAccount(username, password);
  if (test) return test;
  const user = usersByName.get(username);
  const ok = verifyPassword(password, user ? user.password_hash : DUMMY_HASH);
  if (user && ok) {
    failures.delete(username);
    return user;
  }
  const entry = failures.get(username) || { count: 0, since: Date.now() };
  entry.count += 1;
  failures.set(username, entry);
  if (failures.size > 10000) failures.delete(failures.keys().next().value);
  return undefined;
}

function dxClaims(account) {
  const claims = { dx_role: account.dx_role };
  if (account.dx_department) claims.dx_department = account.dx_department;
  if (account.dx_staff_id) claims.dx_staff_id = account.dx_staff_id;
  return claims;
}

const configuration = {
  clients: loadClients(),
  jwks: await loadSigningKeys(),
  cookies: { keys: loadCookieKeys() },
  scopes: ['openid', 'profile', 'offline_access', ...DX_SCOPES],
  claims: {
    openid: ['sub'],
    profile: ['name', 'dx_role', 'dx_department', 'dx_staff_id'],
  },
  extraClientMetadata: {
    properties: ['dx_role', 'dx_access_token_ttl', 'dx_first_party'],
  },
  pkce: { required: () => true },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256'],
    userinfoSigningAlgValues: ['RS256'],
    introspectionSigningAlgValues: ['RS256'],
    authorizationSigningAlgValues: ['RS256'],
  },
  clientDefaults: { id_token_signed_response_alg: 'RS256' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A client that names no resource gets a token for the dx-talent APIs.
      defaultResource: async (_ctx, _client, oneOf) => oneOf || RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: DX_SCOPES.join(' '),
          audience: AUDIENCE,
          accessTokenTTL: client.dx_access_token_ttl || ACCESS_TOKEN_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async findAccount(_ctx, sub) {
    const account = accountsBySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims(_use, scope) {
        const claims = { sub };
        if (scope && scope.split(' ').includes('profile')) {
          Object.assign(claims, { name: account.name }, dxClaims(account));
        }
        return claims;
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    if (token.kind === 'ClientCredentials') {
      const client = ctx.oidc.client || (await provider.Client.find(token.clientId));
      return client?.dx_role ? { dx_role: client.dx_role } : undefined;
    }
    if (token.kind === 'AccessToken' && token.accountId) {
      const account = accountsBySub.get(token.accountId);
      return account ? dxClaims(account) : undefined;
    }
    return undefined;
  },
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  async loadExistingGrant(ctx) {
    // First-party clients need no consent screen: their grant covers what they ask for (and their
    // registered scope already limits that).
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!oidc.client.dx_first_party) return grant;
    if (!grant || grant.accountId !== oidc.session.accountId) {
      grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    }
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers)) {
      const wanted = [...oidc.requestParamScopes].filter((scope) => resourceServer.scopes.has(scope));
      if (wanted.length) grant.addResourceScope(indicator, wanted.join(' '));
    }
    await grant.save();
    return grant;
  },
  interactions: {
    url: async (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || ACCESS_TOKEN_TTL,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 8 * 3600,
    Grant: 8 * 3600,
    RefreshToken: 8 * 3600,
  },
  clientBasedCORS: () => false,
  renderError,
};

// ---- pages (server-rendered, Japanese and English, no script, styles from /idp-assets/style.css) ----

const STYLE = `body{font-family:"Noto Sans JP",system-ui,sans-serif;background:#f4f6f8;margin:0;padding:40px 16px;color:#1b1f23}
main{max-width:380px;margin:0 auto;background:#fff;border-radius:8px;padding:24px 28px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.3em;margin:0 0 4px}p.sub{color:#57606a;margin:0 0 18px;font-size:.9em}
label{display:block;margin:12px 0 4px;font-weight:600}input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;font-size:1em;border:1px solid #b0b7bf;border-radius:4px}
button{margin-top:18px;width:100%;padding:10px;font-size:1em;border:0;border-radius:4px;background:#0b5cad;color:#fff;cursor:pointer}button.secondary{background:#6e7781}
.error{background:#ffebe9;border:1px solid #cf222e;color:#82071e;padding:8px;border-radius:4px}`;

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/idp-assets/style.css">
</head>
<body><main>
${body}
</main></body>
</html>`;
}

function setPageHeaders(ctx) {
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'");
  ctx.set('X-Content-Type-Options', 'nosniff');
  // Not no-referrer: under it a browser sends `Origin: null` on a form post, and sameOrigin() below then
  // refuses the provider's own login form. same-origin still sends nothing to other sites.
  ctx.set('Referrer-Policy', 'same-origin');
  ctx.set('Cache-Control', 'no-store');
}

function loginPage(uid, { error = false, username = '', clientName = '' } = {}) {
  return page('サインイン / Sign in', `<h1>サインイン / Sign in</h1>
<p class="sub">デジタル人財育成システム${clientName ? ` — ${escapeHtml(clientName)}` : ''}</p>
${error ? '<p class="error" role="alert">ユーザー名またはパスワードが正しくありません。<br>The user name or password is not correct.</p>' : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label for="username">ユーザー名 / User name</label>
<input id="username" name="username" type="text" required autofocus value="${escapeHtml(username)}">
<label for="password">パスワード / Password</label>
<input id="password" name="password" type="password" required>
<button type="submit">サインイン / Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" class="secondary">キャンセル / Cancel</button>
</form>`);
}

async function logoutSource(ctx, form) {
  setPageHeaders(ctx);
  ctx.body = page('サインアウト / Sign out', `<h1>サインアウトしますか？ / Sign out?</h1>
${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">サインアウト / Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">キャンセル / Stay signed in</button>`);
}

async function postLogoutSuccessSource(ctx) {
  setPageHeaders(ctx);
  ctx.body = page('サインアウトしました / Signed out', '<h1>サインアウトしました / Signed out</h1>');
}

async function renderError(ctx, out) {
  setPageHeaders(ctx);
  ctx.type = 'html';
  ctx.body = page('エラー / Error', `<h1>エラー / Error</h1>
<p class="error">${escapeHtml(out.error)}: ${escapeHtml(out.error_description)}</p>`);
}

// ---- the provider and its interaction routes ----

const provider = new Provider(ISSUER, configuration);
if (ISSUER.startsWith('https:')) provider.proxy = true;

async function readForm(ctx) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > 16 * 1024) ctx.throw(413);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sameOrigin(ctx) {
  // Form posts must come from our own pages (the interaction cookie binds them to the browser too).
  const origin = ctx.get('origin');
  return !origin || origin === new URL(ISSUER).origin;
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/idp-assets/style.css' && ctx.method === 'GET') {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = STYLE;
    return;
  }
  const match = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(ctx.path);
  if (!match) {
    await next();
    return;
  }
  setPageHeaders(ctx);
  const [, uid, action] = match;
  if (ctx.method === 'POST' && !sameOrigin(ctx)) {
    ctx.status = 403;
    ctx.type = 'html';
    ctx.body = page('エラー / Error', '<h1>エラー / Error</h1><p class="error">このフォームは別のサイトから送信されました。<br>This form was sent from another site.</p>');
    return;
  }
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch {
    details = undefined;
  }
  if (!details || details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('サインインをやり直してください / Start again', `<h1>サインインをやり直してください / Please start again</h1>
<p class="error">このサインイン手続きは期限切れか、見つかりません。アプリケーションからもう一度サインインしてください。<br>
This sign-in request has expired or is unknown. Sign in again from the application.</p>`);
    return;
  }
  const client = await provider.Client.find(details.params.client_id);

  if (!action && ctx.method === 'GET') {
    if (details.prompt.name === 'login') {
      ctx.type = 'html';
      ctx.body = loginPage(uid, { clientName: client?.clientName });
      return;
    }
    // Consent for a client that is not first party: granted for what it is registered for, since
    // every client here is the prefecture's own. (First-party clients never get here.)
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const { missingOIDCScope, missingResourceScopes } = details.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    for (const [indicator, scopes] of Object.entries(missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return;
  }

  if (ctx.method !== 'POST') ctx.throw(405);

  if (action === 'abort') {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return;
  }

  if (action === 'login' && details.prompt.name === 'login') {
    const form = await readForm(ctx);
    const username = (form.get('username') || '').trim();
    const account = authenticate(username, form.get('password') || '');
    if (!account) {
      log('idp.sign_in_refused', { client_id: details.params.client_id });
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, { error: true, username, clientName: client?.clientName });
      return;
    }
    log('idp.signed_in', { sub: account.sub, dx_role: account.dx_role, client_id: details.params.client_id });
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: account.sub },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return;
  }
  ctx.throw(400);
});

provider.on('server_error', (_ctx, error) => log('idp.server_error', { error: error.message }));

provider.listen(PORT, HOST, () => {
  log('idp.listening', {
    issuer: ISSUER, port: PORT, host: HOST, audience: AUDIENCE, test_mode: TEST_MODE, users: users.length,
  });
});
