// An agent using the official TypeScript SDK client against warden's MCP endpoint:
//   node tsclient.mjs <url> <bearer-token> <call-json>...
// Each call is {"name": ..., "arguments": {...}}. Prints one JSON object with what it saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, ...calls] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "warden-ts-agent", version: "1.0.0" });
await client.connect(transport);
const out = {
  server: client.getServerVersion(),
  protocolVersion: transport.protocolVersion,
  sessionId: transport.sessionId,
  tools: (await client.listTools()).tools.map((t) => t.name),
  results: [],
};
for (const call of calls) {
  out.results.push(await client.callTool(JSON.parse(call)));
}
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
