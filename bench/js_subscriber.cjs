// The reference subscriber for bench/validate_client.py: the real socket.io-client.
// Usage: node bench/js_subscriber.cjs <url> <token> <types-json> <count> <timeout-ms>
// Prints one JSON line per step: {"ack": ...}, then {"event": name, "data": envelope}
// per event received, until <count> events arrived; exits 0 then, 1 on error or timeout.
"use strict";
const { io } = require("socket.io-client");

const [url, token, typesJson, countText, timeoutText] = process.argv.slice(2);
const wanted = Number(countText);
const socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
let received = 0;

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const fail = (message) => {
  print({ error: message });
  socket.close();
  process.exit(1);
};
setTimeout(() => fail(`timed out after ${received} events`), Number(timeoutText));

socket.on("connect_error", (error) => fail(`connect_error: ${error.message}`));
socket.onAny((name, data) => {
  print({ event: name, data });
  received += 1;
  if (received >= wanted) {
    socket.close();
    process.exit(0);
  }
});
socket.on("connect", () => {
  socket.emit("subscribe", { types: JSON.parse(typesJson) }, (ack) => print({ ack }));
});
