// The embedded OpenID provider of the local environment: node-oidc-provider (OpenID Certified) on
// loopback. Started by `mlctl local up` (control_plane/emulator/idp.py) with one argument, the path of
// a JSON configuration that Python writes:
//   {"issuer": "http://127.0.0.1:PORT", "port": PORT, "audience": "urn:mlctl:control-plane",
//    "jwks_file": ".../idp/jwks.json", "cookie_keys": ["..."], "ttl": {"AccessToken": 300, ...},
//    "users": {"amira": {"groups": ["mlctl-approver"], "name": "amira"}},
//    "clients": [{"client_id": "mlctl-cli", ...}, {"client_id": "ci-pipeline", ...}]}
//
// Access tokens are JWTs (`typ: at+jwt`, RFC 9068) for the control plane's audience, carrying
// `groups` and an explicit `principal_type` ("person" for people who logged in, "workload" for
// client-credentials tokens) so that the verifier never guesses from `sub`.
//
// Key rotation without a restart: the signing keys are read from `jwks_file` (private JWKs, the
// first one signs, the others stay published so tokens they signed still verify). On SIGHUP the
// file is read again and a fresh Provider with the new keystore takes over the same listener;
// grants, sessions and device codes live in the shared in-memory adapter, so nothing is lost.
import fs from 'node:fs';
import http from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

function readJwks() {
  return JSON.parse(fs.readFileSync(config.jwks_file, 'utf8'));
}

async function findAccount(ctx, id) {
  const user = config.users[id];
  if (!user) return undefined; // unknown logins fail; only the configured demo users exist
  return {
    accountId: id,
    async claims() {
      return { sub: id, preferred_username: id, name: user.name ?? id, groups: user.groups };
    },
  };
}

function build() {
  const provider = new Provider(config.issuer, {
    clients: config.clients,
    jwks: readJwks(),
    findAccount,
    cookies: { keys: config.cookie_keys },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'profile', 'groups', 'mlctl'],
    ttl: config.ttl,
    features: {
      devInteractions: { enabled: true }, // the login and consent pages a test completes over HTTP
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== config.audience) {
            throw new Error(`unknown resource ${resource}`);
          }
          return {
            scope: 'mlctl',
            audience: config.audience,
            accessTokenTTL: config.ttl.AccessToken,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    issueRefreshToken: async (ctx, client, code) => (
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')
    ),
    extraTokenClaims: async (ctx, token) => {
      if (token.kind === 'ClientCredentials') {
        return { principal_type: 'workload' };
      }
      const user = config.users[token.accountId];
      return { principal_type: 'person', groups: user ? user.groups : [] };
    },
  });
  provider.proxy = false;
  return provider;
}

let handler = build().callback();
const server = http.createServer((req, res) => handler(req, res));

process.on('SIGHUP', () => {
  try {
    handler = build().callback();
    console.log(`keys reloaded from ${config.jwks_file}`);
  } catch (err) {
    // A broken key file must not take the provider down: keep serving with the old keys.
    console.error(`key reload failed, keeping the previous keys: ${err.message}`);
  }
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
