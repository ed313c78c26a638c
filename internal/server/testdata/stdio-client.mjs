// A client of `warden connect --stdio` on the official TypeScript SDK, as docs/clients.md
// shows it: node stdio-client.mjs WARDEN_BINARY CREDENTIALS_FILE WARDEN_ADDR
// It lists the tools, calls one, is denied another, answers the upstream's sampling,
// elicitation and roots requests during a call, and prints what it saw as one JSON line.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CallToolResultSchema, CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [warden, credentials, addr] = process.argv.slice(2);
const transport = new StdioClientTransport({
  command: warden,
  args: ["connect", "--stdio", "--credentials", credentials],
  env: { ...getDefaultEnvironment(), WARDEN_ADDR: addr },
  stderr: "inherit",
});
const client = new Client({ name: "ts-client", version: "1.0.0" }, { capabilities: { sampling: {}, elicitation: {}, roots: {} } });
client.setRequestHandler(CreateMessageRequestSchema, async () => ({
  role: "assistant", model: "m", content: { type: "text", text: "hi from the client" },
}));
client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "Ada" } }));
client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: "file:///work", name: "work" }] }));

await client.connect(transport);
const tools = await client.listTools();
const ok = await client.callTool({ name: "notes.echo", arguments: { message: "hi" } });
const denied = await client.callTool({ name: "notes.delete_everything", arguments: {} });
const interact = await client.callTool({ name: "notes.interact", arguments: {} }, CallToolResultSchema, { timeout: 15000 });
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name).sort(),
  ok: ok.content[0].text,
  denied: { isError: denied.isError === true, text: denied.content[0].text },
  interact: interact.content[0].text,
}));
await client.close();
