// A socket.io-client driven over stdin/stdout by the Python tests (tests/realtime/test_js_client.py).
// argv: <url> <token or ""> [transport: websocket | polling | upgrade (polling, then the
// upgrade to websocket: the client's default)] [reconnect: "reconnect" to let the client
// reconnect by itself, as a stock client does]. Prints one JSON object per line for everything
// that happens; reads one JSON command per line: {op: "subscribe"|"unsubscribe", body} |
// {op: "ping"} | {op: "refresh", body: {token}} | {op: "drop", body?: {hold?, url?}} (the
// transport is lost: `socket.io.engine.close()`; with `hold`, no reconnect until "reconnect";
// with `url`, the reconnects go there, as through a load balancer) | {op: "retarget", body:
// {url}} | {op: "reconnect"} | {op: "close"}.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, firstToken, transport = "websocket", reconnect = ""] = process.argv.slice(2);
// The README's pattern: `auth` as a callback reads the newest token at every (re)connect,
// and an accepted in-band refresh replaces it.
let token = firstToken;
const out = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

const socket = io(url, {
  auth: (cb) => cb(token ? { token } : {}),
  transports: transport === "upgrade" ? ["polling", "websocket"] : [transport],
  reconnection: reconnect === "reconnect",
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
});

// `recovered`: connection state recovery restored the session (Socket.IO v4.6+).
socket.on("connect", () =>
  out({
    kind: "connected",
    id: socket.id,
    engine: socket.io.engine.id,
    transport: socket.io.engine.transport.name,
    recovered: socket.recovered,
  }),
);
socket.io.engine.on("upgrade", (upgraded) => out({ kind: "upgraded", transport: upgraded.name }));
socket.on("connect_error", (err) => out({ kind: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ kind: "disconnected", reason }));
// The server adds the event's id as a last argument: the offset the client recovers from.
socket.onAny((name, data, ...rest) => out({ kind: "event", name, data, rest }));

const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  const command = JSON.parse(line);
  switch (command.op) {
    case "subscribe":
    case "unsubscribe":
      socket.emit(command.op, command.body, (ack) => out({ kind: "ack", op: command.op, ack }));
      break;
    case "refresh":
      socket.emit("refresh", command.body, (ack) => {
        if (ack.ok) token = command.body.token;
        out({ kind: "ack", op: "refresh", ack });
      });
      break;
    case "ping":
      socket.emit("ping", (ack) => out({ kind: "ack", op: "ping", ack }));
      break;
    case "drop":
      if (command.body?.url) socket.io.uri = command.body.url;
      socket.io.reconnection(!command.body?.hold);
      socket.io.engine.close();
      out({ kind: "dropped" });
      break;
    case "retarget":
      socket.io.uri = command.body.url;
      break;
    case "reconnect":
      socket.io.reconnection(true);
      socket.connect();
      break;
    case "close":
      socket.disconnect();
      process.exit(0);
      break;
    default:
      out({ kind: "error", message: `unknown op ${command.op}` });
  }
});
commands.on("close", () => {
  socket.disconnect();
  process.exit(0);
});
