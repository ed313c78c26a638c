// The TypeScript SDK's client OAuth flow against warden, the Go test playing the browser:
//   node oauth.mjs <mcp-url> <tool-call-json>
// When the SDK sends the person to authorize, this prints "AUTHORIZE <url>" and reads one line
// "CODE <code> <state>" from stdin. At the end it prints "RESULT <json>".
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [url, call] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const saved = {};
const provider = {
  get redirectUrl() { return "http://127.0.0.1:9/ts-callback"; },
  get clientMetadata() {
    return {
      client_name: "warden TS SDK test",
      redirect_uris: ["http://127.0.0.1:9/ts-callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  state() { return "ts-state"; },
  clientInformation() { return saved.client; },
  saveClientInformation(info) { saved.client = info; },
  tokens() { return saved.tokens; },
  saveTokens(tokens) { saved.tokens = tokens; },
  redirectToAuthorization(u) { console.log("AUTHORIZE " + u.toString()); },
  saveCodeVerifier(v) { saved.verifier = v; },
  codeVerifier() { return saved.verifier; },
};

async function connect() {
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  const client = new Client({ name: "warden-ts-oauth", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

let client;
try {
  client = await connect();
  throw new Error("connected without authorization");
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  const { value } = await lines.next();
  const [word, code, state] = (value ?? "").split(" ");
  if (word !== "CODE" || state !== "ts-state") throw new Error("no code from the browser: " + value);
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await transport.finishAuth(code);
  client = await connect();
}
const tools = (await client.listTools()).tools.map((t) => t.name);
const result = await client.callTool(JSON.parse(call));
await client.close();
console.log("RESULT " + JSON.stringify({ tools, result, refresh: Boolean(saved.tokens?.refresh_token), client_id: saved.client?.client_id }));
process.exit(0);
