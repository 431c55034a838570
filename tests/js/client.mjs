// A socket.io-client driven over stdin/stdout by the Python tests (tests/realtime/test_js_client.py).
// argv: <url> <token or ""> [transport: websocket | polling | upgrade (polling, then the
// upgrade to websocket: the client's default)]. Prints one JSON object per line for everything that
// happens; reads one JSON command per line: {op: "subscribe"|"unsubscribe", body} | {op: "ping"}
// | {op: "refresh", body: {token}} | {op: "close"}.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, firstToken, transport = "websocket"] = process.argv.slice(2);
// The README's pattern: `auth` as a callback reads the newest token at every (re)connect,
// and an accepted in-band refresh replaces it.
let token = firstToken;
const out = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

const socket = io(url, {
  auth: (cb) => cb(token ? { token } : {}),
  transports: transport === "upgrade" ? ["polling", "websocket"] : [transport],
  reconnection: false,
});

socket.on("connect", () =>
  out({ kind: "connected", id: socket.id, engine: socket.io.engine.id }),
);
socket.io.engine.on("upgrade", (upgraded) => out({ kind: "upgraded", transport: upgraded.name }));
socket.on("connect_error", (err) => out({ kind: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ kind: "disconnected", reason }));
socket.onAny((name, data) => out({ kind: "event", name, data }));

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
