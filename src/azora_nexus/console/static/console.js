// The console's entry point: sign in with an admin token, then health, cache, feed and browser.

import { createApi, el, say } from "./api.js";
import { startBrowser } from "./browse.js";
import { forgetFeed, startFeed } from "./feed.js";

const TOKEN_KEY = "azora.console.token";
const POLL_MS = 5000;

const $ = (id) => document.getElementById(id);

const ui = {
  signIn: $("sign-in"),
  signInForm: $("sign-in-form"),
  token: $("token"),
  signInError: $("sign-in-error"),
  console: $("console"),
  who: $("who"),
  whoName: $("who-name"),
  signOut: $("sign-out"),
  healthStatus: $("health-status"),
  healthChecks: $("health-checks"),
  cacheHitRate: $("cache-hit-rate"),
  cacheCounters: $("cache-counters"),
  feed: {
    socketStatus: $("socket-status"),
    lastEventId: $("last-event-id"),
    eventRate: $("event-rate"),
    eventTotal: $("event-total"),
    filters: $("filters"),
    domainBoxes: $("domain-boxes"),
    extraTypes: $("extra-types"),
    typeNames: $("type-names"),
    filterStatus: $("filter-status"),
    feedRows: $("feed-rows"),
    feedEmpty: $("feed-empty"),
  },
  browse: {
    toggles: [...document.querySelectorAll("button.toggle")],
    ownerForm: $("wallet-owner"),
    ownerId: $("owner-id"),
    status: $("browse-status"),
    caption: $("browse-caption"),
    head: $("browse-head"),
    rows: $("browse-rows"),
    more: $("browse-more"),
    details: $("details"),
    detailsTitle: $("details-title"),
    detailsBody: $("details-body"),
  },
};

let session = null; // {api, feed, pollTimer} while signed in
const browser = startBrowser(() => session?.api, ui.browse);

/** The token's claims, for display only: the server checks the signature on every call. */
function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

async function showHealth(api) {
  const { status, body } = await api.get("/health");
  const ok = status === 200 && body?.status === "ok";
  ui.healthStatus.dataset.state = ok ? "ok" : "down";
  ui.healthStatus.textContent = body?.status ?? `HTTP ${status}`;
  const checks = Object.entries(body?.checks ?? {});
  ui.healthChecks.replaceChildren(
    ...checks.map(([name, check]) => {
      const item = el("li", null, { "data-state": check.ok ? "ok" : "down" });
      const latency = check.ok ? `${Number(check.latencyMs).toFixed(1)} ms` : check.error;
      item.append(el("span", name), el("span", `${check.ok ? "up" : "down"} · ${latency}`));
      return item;
    }),
  );
}

async function showCache(api) {
  const stats = await api.read("/cache/stats");
  ui.cacheHitRate.textContent = `${(stats.hitRate * 100).toFixed(1)}%`;
  const shown = ["hits", "misses", "fills", "invalidations"];
  ui.cacheCounters.replaceChildren(
    ...shown.flatMap((name) => [el("dt", name), el("dd", stats[name] ?? "—")]),
  );
}

async function poll(api) {
  const results = await Promise.allSettled([showHealth(api), showCache(api)]);
  const refused = results.find((result) => result.reason?.status === 401);
  if (refused) return signOut(`Signed out: ${refused.reason.message}`);
  if (results[0].status === "rejected") {
    ui.healthStatus.dataset.state = "down";
    ui.healthStatus.textContent = "unreachable";
  }
  // A poll still in flight at sign-out must not restart the loop for the next session.
  if (session?.api === api) session.pollTimer = setTimeout(() => poll(api), POLL_MS);
}

async function signIn(token) {
  const api = createApi(token);
  // /cache/stats is for admins only: one call tells a bad token (401) from a non-admin (403).
  const { status, body } = await api.get("/cache/stats");
  if (status !== 200) {
    const reason = status === 403 ? "This is not an admin token." : body?.error?.message;
    return signOut(`Sign-in refused: ${reason ?? `HTTP ${status}`}`);
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  const claims = claimsOf(token);
  ui.whoName.textContent = `${claims.sub ?? "?"} (${claims.role ?? "?"})`;
  ui.signIn.hidden = true;
  ui.console.hidden = false;
  ui.who.hidden = false;
  const taxonomy = (await api.read("/events/types")).types;
  session = { api, feed: null, pollTimer: null };
  session.feed = startFeed(token, taxonomy, ui.feed, signOut);
  await poll(api);
  await browser.show("users");
}

function signOut(message = "") {
  if (session) {
    clearTimeout(session.pollTimer);
    session.feed?.stop();
    session = null;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  forgetFeed();
  ui.console.hidden = true;
  ui.who.hidden = true;
  ui.signIn.hidden = false;
  say(ui.signInError, message, { failed: Boolean(message) });
  ui.token.focus();
}

ui.signInForm.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const token = ui.token.value.trim();
  ui.token.value = "";
  say(ui.signInError, "");
  signIn(token).catch((error) => signOut(`Sign-in failed: ${error.message}`));
});
ui.signOut.addEventListener("click", () => signOut());

const kept = sessionStorage.getItem(TOKEN_KEY);
if (kept) signIn(kept).catch((error) => signOut(`Sign-in failed: ${error.message}`));
else ui.token.focus();
