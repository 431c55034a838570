// The live event feed: Socket.IO with type filters, shown newest first, resumed after a reload.
//
// The last id seen and the recent events live in sessionStorage under one key, written
// together: after a reload the page shows what it had and subscribes with `after` = that id,
// so the server replays exactly what was missed (no gap) and nothing already shown (no repeat).
// A lost transport needs none of that: the client reconnects by itself and the server's
// connection state recovery restores the subscription and sends what was missed
// (`socket.recovered`); only a fresh connect (recovery refused) subscribes again.

import { el, say, timeEl } from "./api.js";

const FEED_KEY = "azora.console.feed";
const FILTER_KEY = "azora.console.filter";
const SHOWN = 200; // rows on the page
const KEPT = 100; // events kept across a reload
const RATE_WINDOW_MS = 10_000;
const ACK_TIMEOUT_MS = 10_000;
const FLUSH_MS = 100; // arrivals are drawn in batches, not one layout per event

/** Stream ids ("<ms>-<seq>") in order: negative, zero or positive like a comparator. */
export function compareIds(a, b) {
  const [aMs, aSeq] = a.split("-").map(BigInt);
  const [bMs, bSeq] = b.split("-").map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}

function loadJson(key, fallback) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null") ?? fallback;
  } catch {
    return fallback;
  }
}

function isEnvelope(value) {
  return typeof value?.id === "string" && /^\d+-\d+$/.test(value.id) && typeof value.type === "string";
}

function payloadText(payload) {
  const text = JSON.stringify(payload ?? {});
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function eventRow(event) {
  const row = el("tr", null, { "data-event-id": event.id, "data-event-type": event.type });
  row.append(
    el("td", timeEl(event.timestamp, { withDate: false })),
    el("td", el("code", event.type)),
    el("td", event.source),
    el("td", event.userId ?? "—"),
    el("td", payloadText(event.payload), { class: "payload", title: JSON.stringify(event.payload) }),
    el("td", el("code", event.id)),
  );
  return row;
}

/** Start the feed for `token`; `onRefused(message)` runs when the server refuses the token. */
export function startFeed(token, taxonomy, ui, onRefused) {
  const saved = loadJson(FEED_KEY, { lastId: null, events: [] });
  let events = saved.events.filter(isEnvelope);
  let lastId = typeof saved.lastId === "string" ? saved.lastId : null;
  let subscribed = [];
  let held = []; // what the server had subscribed when the transport was lost
  let pending = [];
  let flushTimer = null;
  let arrivals = [];
  let total = 0;
  let queue = Promise.resolve();
  // The filter the server last accepted: reconnects resubscribe with it, whatever is typed
  // in the form meanwhile. Only an accepted filter is saved, so a reload never brings back
  // one that was refused.
  let applied = loadJson(FILTER_KEY, null);
  if (!isFilter(applied) || selectedTypes(taxonomy, applied).error) {
    applied = { domains: domainsOf(taxonomy), extra: "" };
    sessionStorage.removeItem(FILTER_KEY);
  }

  const socket = window.io({ auth: { token }, transports: ["websocket", "polling"] });
  const setState = (state, text) => {
    ui.socketStatus.dataset.state = state;
    ui.socketStatus.textContent = text;
  };

  function draw(fresh) {
    const rows = document.createDocumentFragment();
    for (const event of fresh) rows.append(eventRow(event));
    ui.feedRows.prepend(rows);
    while (ui.feedRows.rows.length > SHOWN) ui.feedRows.lastElementChild.remove();
    ui.feedEmpty.hidden = events.length > 0;
    ui.lastEventId.textContent = lastId ?? "nothing yet";
  }

  function flush() {
    clearTimeout(flushTimer);
    flushTimer = null;
    // Replays and reconnects may overlap live delivery: never show an id twice.
    const fresh = [];
    for (const event of pending) {
      if (lastId !== null && compareIds(event.id, lastId) <= 0) continue;
      lastId = event.id;
      fresh.unshift(event);
    }
    pending = [];
    if (!fresh.length) return;
    events = fresh.concat(events).slice(0, SHOWN);
    sessionStorage.setItem(FEED_KEY, JSON.stringify({ lastId, events: events.slice(0, KEPT) }));
    draw(fresh);
    showRate();
  }

  function receive(name, event) {
    if (!isEnvelope(event) || event.type !== name) return;
    total += 1;
    arrivals.push(performance.now());
    pending.push(event);
    flushTimer ??= setTimeout(flush, FLUSH_MS);
  }

  function keep(filter) {
    applied = filter;
    sessionStorage.setItem(FILTER_KEY, JSON.stringify(filter));
  }

  async function subscribe(filter) {
    if (!socket.connected) return;
    const types = selectedTypes(taxonomy, filter);
    if (types.error) return say(ui.filterStatus, types.error, { failed: true });
    if (subscribed.length) {
      await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("unsubscribe", { types: subscribed });
      subscribed = [];
    }
    if (!types.names.length) {
      keep(filter);
      setState("ok", "live");
      return say(ui.filterStatus, "Nothing selected: no events arrive.");
    }
    flush(); // `after` must be the newest id already taken in
    const request = lastId ? { types: types.names, after: lastId } : { types: types.names };
    const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("subscribe", request);
    if (!ack.ok) {
      setState("down", "not subscribed");
      return say(ui.filterStatus, ack.error.message, { failed: true });
    }
    subscribed = ack.subscribed;
    keep(filter);
    setState("ok", "live");
    const resumed = request.after ? ` (resumed after ${request.after})` : "";
    say(ui.filterStatus, `Subscribed to ${subscribed.join(", ")}${resumed}.`);
  }

  // One subscription change at a time: a reconnect and a filter change must not interleave.
  function resubscribe(filter = null) {
    queue = queue.then(() => subscribe(filter ?? applied)).catch((error) => {
      say(ui.filterStatus, `Subscribing failed: ${error.message}`, { failed: true });
    });
    return queue;
  }

  socket.onAny(receive);
  socket.on("connect", () => {
    if (!socket.recovered) return resubscribe();
    // Restored by the server with every event missed meanwhile: nothing to send.
    subscribed = held;
    setState("ok", "live");
    say(ui.filterStatus, `Recovered: subscribed to ${subscribed.join(", ")}, nothing missed.`);
  });
  socket.on("disconnect", (reason) => {
    held = subscribed;
    subscribed = [];
    setState("down", socket.active ? "reconnecting…" : "offline");
    say(ui.filterStatus, `Disconnected (${reason}).`);
  });
  socket.on("connect_error", (error) => {
    if (!socket.active) {
      setState("down", "refused");
      onRefused(`The live feed refused the token: ${error.message}`);
    } else {
      setState("down", "reconnecting…");
    }
  });
  ui.filters.addEventListener("submit", onApply);
  const rateTimer = setInterval(showRate, 1000);

  function onApply(submitted) {
    submitted.preventDefault();
    const filter = readFilter(ui);
    const refused = selectedTypes(taxonomy, filter).error;
    // A refused filter changes nothing: the current subscription stays, nothing is saved.
    if (refused) return say(ui.filterStatus, refused, { failed: true });
    resubscribe(filter);
  }

  function showRate() {
    const since = performance.now() - RATE_WINDOW_MS;
    arrivals = arrivals.filter((at) => at >= since);
    ui.eventRate.textContent = (arrivals.length / (RATE_WINDOW_MS / 1000)).toFixed(1);
    ui.eventTotal.textContent = String(total);
  }

  buildFilters(taxonomy, ui, applied);
  setState("unknown", "connecting…");
  ui.feedRows.replaceChildren();
  draw(events);
  return {
    stop() {
      clearInterval(rateTimer);
      clearTimeout(flushTimer);
      ui.filters.removeEventListener("submit", onApply);
      socket.disconnect();
      setState("unknown", "offline");
    },
  };
}

/** Forget what the feed saw (sign-out). */
export function forgetFeed() {
  sessionStorage.removeItem(FEED_KEY);
  sessionStorage.removeItem(FILTER_KEY);
}

function domainsOf(taxonomy) {
  return [...new Set(taxonomy.map((entry) => entry.domain))];
}

function isFilter(value) {
  return Array.isArray(value?.domains) && typeof value?.extra === "string";
}

function buildFilters(taxonomy, ui, saved) {
  const domains = domainsOf(taxonomy);
  const checked = new Set(saved.domains);
  ui.domainBoxes.replaceChildren(
    ...domains.map((domain) => {
      const box = el("input", null, { type: "checkbox", value: `${domain}.*`, name: "domain" });
      box.checked = checked.has(domain);
      const label = el("label", null, { title: `every ${domain}.* event` });
      label.append(box, ` ${domain}`);
      return label;
    }),
  );
  ui.extraTypes.value = saved.extra;
  ui.typeNames.replaceChildren(
    ...domains.map((domain) => el("option", null, { value: `${domain}.*` })),
    ...taxonomy.map((entry) => el("option", entry.description, { value: entry.type })),
  );
}

function readFilter(ui) {
  const boxes = [...ui.domainBoxes.querySelectorAll("input[type=checkbox]")];
  return {
    domains: boxes.filter((box) => box.checked).map((box) => box.value.slice(0, -2)),
    extra: ui.extraTypes.value,
  };
}

/** `{names}` to subscribe to, or `{error}` naming an entry the taxonomy does not know. */
function selectedTypes(taxonomy, filter) {
  const known = new Set(taxonomy.map((entry) => entry.type));
  const domains = new Set(taxonomy.map((entry) => entry.domain));
  const extra = filter.extra.split(/[\s,]+/).filter(Boolean);
  for (const name of extra) {
    const pattern = name.endsWith(".*") && domains.has(name.slice(0, -2));
    if (!known.has(name) && !pattern) {
      return { error: `Unknown event type or pattern: ${name}` };
    }
  }
  const names = [...new Set([...filter.domains.map((domain) => `${domain}.*`), ...extra])];
  return { names };
}
