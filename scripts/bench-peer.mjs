// The peer of scripts/bench: oidc-provider (npm, the version scripts/bench pins) issuing
// EdDSA-signed JWT access tokens to one client for the client_credentials grant, the nearest
// off-the-shelf counterpart of keygate's GET /v1/auth/token.
//
//   node scripts/bench-peer.mjs --modules DIR --port PORT --client-id ID --client-secret SECRET
//
// DIR is the npm project oidc-provider is installed in (scripts/bench uses target/bench/peer).
// It prints `peer listening on http://127.0.0.1:PORT` once it takes requests. The client
// authenticates with client_secret_basic; `POST /token` with grant_type=client_credentials
// (and scope=bench) answers an RFC 9068 JWT for the one resource server, signed with a fresh
// Ed25519 key, valid 300 s like keygate's. Tokens are not stored: as keygate's, they are
// self-contained, though keygate also writes the quota unit each one consumes.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    modules: { type: 'string' },
    port: { type: 'string' },
    'client-id': { type: 'string', default: 'bench' },
    'client-secret': { type: 'string' },
  },
});
for (const name of ['modules', 'port', 'client-secret']) {
  if (!args[name]) throw new Error(`--${name} is required`);
}

// Imported from the npm project given, not from beside this file.
const packageDir = join(args.modules, 'node_modules', 'oidc-provider');
const { main } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const { default: Provider } = await import(pathToFileURL(join(packageDir, main)));

const RESOURCE = 'https://api.bench.example/';
const signingKey = {
  ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }),
  kid: 'bench-ed25519',
  alg: 'EdDSA',
  use: 'sig',
};

const issuer = `http://127.0.0.1:${args.port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    // The only key is Ed25519; this grant makes no ID token, but the metadata must name it.
    id_token_signed_response_alg: 'EdDSA',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['bench-peer-cookie-key-not-used-by-this-grant'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A request without `resource` is for the one resource server.
      defaultResource: () => RESOURCE,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'bench',
          audience: 'keygate',
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'EdDSA' } },
        };
      },
    },
  },
});

const server = provider.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`peer listening on ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
