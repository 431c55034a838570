// Many stock socket.io-client sockets in one Node process, for the cluster test
// (tests/cluster/test_haproxy.py). argv: one JSON object {url, types, clients: [{token, transport}]}.
// Each socket reconnects by itself (the client's own reconnection) after its node dies and is
// restored by connection state recovery: no app code; it subscribes only on a connect that is
// not recovered (README's pattern), which the test expects to be the first one only.
// Prints one JSON line per connect, disconnect, subscribe ack and sentinel; on stdin
// "report" prints each socket's event ids.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2]);
const out = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

const clients = config.clients.map((spec, index) => {
  const state = { index, ids: [], connects: [], disconnects: [], firstAfterReconnect: null };
  const socket = io(config.url, {
    forceNew: true,
    auth: { token: spec.token },
    transports: [spec.transport],
    // Quick retries: the test measures how soon a client is back.
    reconnectionDelay: 100,
    reconnectionDelayMax: 1000,
  });
  socket.on("connect", () => {
    const first = state.connects.length === 0;
    state.connects.push({ t: Date.now(), recovered: socket.recovered === true });
    out({ kind: "connected", client: index, first, recovered: socket.recovered === true });
    if (!socket.recovered) {
      socket.emit("subscribe", { types: config.types }, (ack) =>
        out({ kind: "ack", client: index, first, ack }),
      );
    }
  });
  socket.on("disconnect", (reason) => {
    state.disconnects.push({ t: Date.now(), reason });
    out({ kind: "disconnected", client: index, reason });
  });
  socket.on("connect_error", (err) => out({ kind: "connect_error", client: index, message: err.message }));
  socket.onAny((name, event) => {
    if (state.disconnects.length > 0 && state.firstAfterReconnect === null) {
      state.firstAfterReconnect = Date.now();
    }
    state.ids.push(event.id);
    if (event.payload && event.payload.sentinel) out({ kind: "sentinel", client: index });
  });
  return { socket, state };
});

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "report") {
    out({ kind: "report", clients: clients.map(({ state }) => state) });
  }
});
process.stdin.on("end", () => {
  for (const { socket } of clients) socket.close();
  process.exit(0);
});
