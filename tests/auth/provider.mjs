// A real OAuth 2.1 authorization server for the mcpbus tests: panva's certified `oidc-provider`
// (pinned in package.json), configured for tests and listening on 127.0.0.1 only.
//
//   node provider.mjs [--port N] [--issuer-path /PATH] [--keys-file FILE] [--exit-with-stdin]
//
// Once listening it prints ONE JSON line on stdout (nothing else ever goes to stdout):
//   {"port":N,"issuer":"http://127.0.0.1:N/PATH","kid":"..."}
// Everything else (oidc-provider's notices, errors) goes to stderr. README.md describes the
// clients, scopes and token shapes; crates/mcpbus-testkit/src/oidc.rs is the Rust handle.
//
// --port N          the loopback port (default 0: any free one);
// --issuer-path P   the issuer is http://127.0.0.1:PORT + P (default: no path), so that a second
//                   instance, or one with a path, is a different issuer;
// --keys-file FILE  the private signing JWKS: read from FILE when it exists, else generated and
//                   written there (two instances sharing FILE sign with the same key, so a
//                   token of the wrong issuer still carries a trusted signature);
// --exit-with-stdin exit when stdin ends (the test that started it is gone).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// stdout carries the one JSON line; oidc-provider prints its notices with console.info.
console.info = console.error;
console.log = console.error;

/** The scopes a resource server (any loopback URL given as RFC 8707 `resource`) accepts. */
const RESOURCE_SCOPES = ['mcp', 'events:subscribe', 'events:publish', 'events:webhook'];
/** Every scope the server knows (discovery's scopes_supported, DCR's `scope` metadata). */
const ALL_SCOPES = ['openid', 'offline_access', ...RESOURCE_SCOPES];
/** The account of an authorization request without `login_hint`. */
const DEFAULT_ACCOUNT = 'agent-a';
/** The `login_hint` for which the test user refuses (the client gets `access_denied`). */
const DENYING_ACCOUNT = 'deny';
/** Access token lifetime (seconds), and that of the "expiring" clients. */
const TOKEN_TTL = 3600;
const SHORT_TTL = 2;

/**
 * How each static client's access tokens look: `format` (jwt | opaque), `ttl` (seconds) and
 * `agent`, the `sub` of its client-credentials tokens. Dynamically registered clients get the
 * defaults (JWT, TOKEN_TTL, agent = client id).
 */
const POLICIES = new Map([
  ['agent-a', {}],
  ['agent-b', {}],
  ['agent-c', {}],
  ['agent-a-opaque', { format: 'opaque', agent: 'agent-a' }],
  ['agent-b-opaque', { format: 'opaque', agent: 'agent-b' }],
  ['agent-a-expiring', { ttl: SHORT_TTL, agent: 'agent-a' }],
  ['agent-a-expiring-opaque', { format: 'opaque', ttl: SHORT_TTL, agent: 'agent-a' }],
]);

function policyFor(clientId) {
  const policy = POLICIES.get(clientId) ?? {};
  return {
    format: policy.format ?? 'jwt',
    ttl: policy.ttl ?? TOKEN_TTL,
    agent: policy.agent ?? clientId,
  };
}

/** The static clients: confidential client-credentials agents, the resource server, a public app. */
function staticClients() {
  const confidential = (id, grants) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: grants,
    response_types: [],
    redirect_uris: [],
  });
  return [
    ...[...POLICIES.keys()].map((id) => confidential(id, ['client_credentials'])),
    // mcpbus as a resource server: introspects (RFC 7662) and revokes, requests no token.
    confidential('mcpbus-rs', []),
    {
      client_id: 'mcp-public',
      token_endpoint_auth_method: 'none',
      // native: a loopback redirect URI matches on any port (RFC 8252 7.3).
      application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [
        'http://127.0.0.1/callback',
        'http://localhost/callback',
        'http://[::1]/callback',
      ],
    },
  ];
}

// ---- storage shared by the successive Provider instances (one per signing key) ----

const records = new Map(); // "Model:id" -> { payload, expiresAt }
const grantMembers = new Map(); // grantId -> Set of "Model:id"
const sessionsByUid = new Map(); // session uid -> session id
const byUserCode = new Map(); // user code -> id

/**
 * An in-memory oidc-provider adapter whose storage outlives a Provider instance, so that a key
 * rotation (a new instance) keeps tokens, grants and registered clients. Unbounded: one test's
 * worth of records.
 */
class SharedAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    records.set(key, { payload, expiresAt });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
    if (this.model === 'Session' && payload.uid) sessionsByUid.set(payload.uid, id);
    if (payload.userCode) byUserCode.set(payload.userCode, id);
  }

  async find(id) {
    const key = this.key(id);
    const record = records.get(key);
    if (!record) return undefined;
    if (record.expiresAt <= Date.now()) {
      records.delete(key);
      return undefined;
    }
    return record.payload;
  }

  async findByUid(uid) {
    const id = sessionsByUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = byUserCode.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    records.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) records.delete(key);
    grantMembers.delete(grantId);
  }
}

// ---- signing keys ----

/** A fresh RS256 signing key (private JWK) with a random `kid`. */
function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(12).toString('base64url'), alg: 'RS256', use: 'sig' };
}

/** The signing key of --keys-file if it exists, else a new one (written there if given). */
function initialSigningKey(keysFile) {
  if (keysFile && fs.existsSync(keysFile)) {
    const jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
    if (!Array.isArray(jwks.keys) || jwks.keys.length !== 1) {
      throw new Error(`${keysFile}: expected a JWKS with exactly one private key`);
    }
    return jwks.keys[0];
  }
  return saveKey(newSigningKey(), keysFile);
}

function saveKey(key, keysFile) {
  if (keysFile) {
    fs.writeFileSync(keysFile, `${JSON.stringify({ keys: [key] })}\n`, { mode: 0o600 });
  }
  return key;
}

// ---- the provider ----

function isLoopbackUrl(value) {
  const url = URL.parse(value);
  return Boolean(url)
    && (url.protocol === 'http:' || url.protocol === 'https:')
    && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
    && !url.hash;
}

/** The resource server behind a `resource` value: any loopback URL, with RESOURCE_SCOPES. */
async function getResourceServerInfo(_ctx, resource, client) {
  if (!isLoopbackUrl(resource)) {
    throw new errors.InvalidTarget(`this test server only issues tokens for loopback http(s) URLs, not ${resource}`);
  }
  const policy = policyFor(client.clientId);
  return {
    scope: RESOURCE_SCOPES.join(' '),
    accessTokenFormat: policy.format,
    accessTokenTTL: policy.ttl,
    jwt: { sign: { alg: 'RS256' } },
  };
}

/** `agent_id` on every access token; `sub` = the client's agent on client-credentials ones. */
async function extraTokenClaims(_ctx, token) {
  const agent = token.accountId ?? policyFor(token.clientId).agent;
  return token.accountId ? { agent_id: agent } : { agent_id: agent, sub: agent };
}

function configuration(jwk) {
  const ttl = (_ctx, token, client) => token.resourceServer?.accessTokenTTL
    ?? policyFor(client.clientId).ttl;
  return {
    adapter: SharedAdapter,
    clients: staticClients(),
    jwks: { keys: [jwk] },
    scopes: ALL_SCOPES,
    // Expiry is exact: an "expiring" token is inactive as soon as its `exp` passes.
    clockTolerance: 0,
    clientBasedCORS: () => false,
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    extraTokenClaims,
    formats: {
      customizers: {
        // oidc-provider puts client_id in `sub` of client-credentials JWTs; here it is the
        // client's agent (the same for agent-a/b/c, agent-a for agent-a-expiring).
        jwt: async (_ctx, token, jwt) => {
          if (!token.accountId) jwt.payload.sub = policyFor(token.clientId).agent;
        },
      },
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      AuthorizationCode: 60,
      IdToken: TOKEN_TTL,
      Interaction: 600,
      RefreshToken: 24 * 3600,
      Grant: 24 * 3600,
      Session: 24 * 3600,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Any confidential client (mcpbus-rs above all) may introspect any token; a public
      // client only its own.
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none'
          || token.clientId === client.clientId,
      },
      // A token is revoked by the client it was issued to (RFC 7009), as oidc-provider does by
      // default; anyone else is answered invalid_request.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId !== client.clientId) {
            throw new errors.InvalidRequest('only the client a token was issued to may revoke it');
          }
          return true;
        },
      },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo,
        // The token request may omit the `resource` of the authorization request.
        useGrantedResource: async () => true,
      },
    },
  };
}

function logEvents(provider) {
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  for (const event of [
    'authorization.error', 'grant.error', 'introspection.error', 'revocation.error',
    'registration_create.error', 'jwks.error', 'discovery.error',
  ]) {
    provider.on(event, (_ctx, err) => console.error(`${event}: ${err.message}`, err.error_description ?? ''));
  }
}

function newProvider(issuer, jwk) {
  const provider = new Provider(issuer, configuration(jwk));
  logEvents(provider);
  return provider;
}

// ---- the auto-approving interaction ----

const epochNow = () => Math.floor(Date.now() / 1000);
const asList = (value) => (value === undefined ? [] : [].concat(value));

/** A grant of everything the authorization request asked for. */
async function grantAll(provider, params, accountId) {
  const grant = new provider.Grant({ accountId, clientId: params.client_id });
  const scopes = (params.scope ?? '').split(' ').filter(Boolean);
  const oidcScopes = scopes.filter((s) => ALL_SCOPES.includes(s));
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  for (const resource of asList(params.resource)) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

/** The result of the interaction: login as `login_hint` (default agent-a) and consent to all. */
async function interactionResult(provider, params) {
  const account = params.login_hint ?? DEFAULT_ACCOUNT;
  if (account === DENYING_ACCOUNT) {
    return { error: 'access_denied', error_description: 'the test user refused (login_hint=deny)' };
  }
  if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(account)) {
    return {
      error: 'access_denied',
      error_description: `login_hint must be an account id of [A-Za-z0-9._:@-]{1,128}, not ${JSON.stringify(account)}`,
    };
  }
  const grantId = await grantAll(provider, params, account);
  return { login: { accountId: account }, consent: { grantId } };
}

/**
 * GET /interaction/UID: completes the pending authorization request UID at once, without a
 * form, and redirects back to the authorization endpoint to resume it. The interaction is found
 * by the UID in the URL (no cookie needed; see `route`).
 */
async function interaction(provider, uid, res) {
  const pending = await provider.Interaction.find(uid);
  if (!pending) {
    return sendJson(res, 400, { error: 'invalid_request', error_description: `no pending authorization request ${uid} (unknown or expired)` });
  }
  pending.result = await interactionResult(provider, pending.params);
  await pending.save(Math.max(pending.exp - epochNow(), 1));
  res.writeHead(303, { Location: pending.returnTo, 'Content-Length': '0' });
  return res.end();
}

// ---- HTTP ----

function sendJson(res, status, body) {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function isLoopbackPeer(address) {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/**
 * The routes: /admin/rotate-keys, /interaction/UID, RFC 8414 metadata for an issuer with a path,
 * and everything under the issuer's path to oidc-provider. Cookies are dropped: every
 * authorization request logs in afresh as its login_hint (no session is remembered between
 * requests), and the resume cookie is derived from the resume URL, so that clients need no cookie
 * jar, only to follow redirects.
 */
function router(state) {
  const { issuerPath } = state;
  const metadataAliases = issuerPath
    ? new Map([
      [`/.well-known/oauth-authorization-server${issuerPath}`, '/.well-known/oauth-authorization-server'],
      [`/.well-known/openid-configuration${issuerPath}`, '/.well-known/openid-configuration'],
    ])
    : new Map();
  return async (req, res) => {
    if (!isLoopbackPeer(req.socket.remoteAddress)) return sendJson(res, 403, { error: 'loopback only' });
    if (!state.handler) return sendJson(res, 503, { error: 'starting' });
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/admin/rotate-keys') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'POST only' });
      return sendJson(res, 200, state.rotate());
    }
    const interactionUid = /^\/interaction\/([\w-]+)$/.exec(url.pathname)?.[1];
    if (interactionUid) return interaction(state.provider, interactionUid, res);
    let path = metadataAliases.get(url.pathname);
    if (path === undefined && (url.pathname === issuerPath || url.pathname.startsWith(`${issuerPath}/`))) {
      path = url.pathname.slice(issuerPath.length) || '/';
    }
    if (path === undefined) return sendJson(res, 404, { error: `no route ${url.pathname}` });
    req.url = path + url.search;
    // oidc-provider takes its mount path (the issuer's path, in every URL it writes) from
    // originalUrl minus url, the way Express and Connect mount apps.
    req.originalUrl = issuerPath + req.url;
    delete req.headers.cookie;
    const resumeUid = /^\/auth\/([\w-]+)$/.exec(path)?.[1];
    if (resumeUid) req.headers.cookie = `_interaction_resume=${resumeUid}`;
    return state.handler(req, res);
  };
}

// ---- command line ----

function parseArgs(argv) {
  const options = { port: 0, issuerPath: '', keysFile: undefined, exitWithStdin: false };
  for (let i = 0; i < argv.length; i += 1) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (argv[i]) {
      case '--port': options.port = Number(value()); break;
      case '--issuer-path': options.issuerPath = value(); break;
      case '--keys-file': options.keysFile = value(); break;
      case '--exit-with-stdin': options.exitWithStdin = true; break;
      default: throw new Error(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new Error('--port must be a port number (0: any free one)');
  }
  if (options.issuerPath && !/^(\/[\w.-]+)+$/.test(options.issuerPath)) {
    throw new Error('--issuer-path must look like /segment[/segment...] (letters, digits, _ . -)');
  }
  return options;
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`provider.mjs: ${err.message}\nusage: node provider.mjs [--port N] [--issuer-path /PATH] [--keys-file FILE] [--exit-with-stdin]`);
    process.exit(2);
  }
  const state = { issuerPath: options.issuerPath };
  state.route = router(state);
  const server = http.createServer((req, res) => {
    state.route(req, res).catch((err) => {
      console.error('request failed', err);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: err.message });
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}${options.issuerPath}`;
  const install = (jwk) => {
    state.provider = newProvider(issuer, jwk);
    state.handler = state.provider.callback();
    state.kid = jwk.kid;
  };
  install(initialSigningKey(options.keysFile));
  // A key rotation is a new Provider instance with the new key only; the storage is shared.
  state.rotate = () => {
    const previous = state.kid;
    install(saveKey(newSigningKey(), options.keysFile));
    console.error(`rotated the signing key: ${previous} -> ${state.kid}`);
    return { kid: state.kid, previous_kid: previous };
  };
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  if (options.exitWithStdin) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
  }
  process.stdout.write(`${JSON.stringify({ port, issuer, kid: state.kid })}\n`);
}

main().catch((err) => {
  console.error('provider.mjs:', err);
  process.exit(1);
});
