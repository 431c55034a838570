// The read-only data browser: users, wallets and courses a page at a time, details on demand.
// Every call is a GET on an existing route; nothing here writes.

import { el, say, timeEl } from "./api.js";

const PAGE_SIZE = 25;

const dash = (value) => value ?? "—";

/** What each list shows: its route, its columns, and the details each row can open. */
const KINDS = {
  users: {
    title: "Users",
    path: "/api/admin/users",
    columns: [
      ["Username", (user) => user.username],
      ["Email", (user) => dash(user.email)],
      ["Role", (user) => user.role],
      ["Display name", (user) => dash(user.profile?.displayName)],
      ["Joined", (user) => timeEl(user.createdAt)],
    ],
    actions: (user, view) => [
      button("Profile", `Profile of ${user.username}`, () =>
        view.details(`User ${user.username}`, `/api/users/${user.id}`),
      ),
      button("Wallets", `Wallets of ${user.username}`, () => view.show("wallets", user.id)),
    ],
  },
  wallets: {
    title: "Wallets",
    path: "/api/admin/wallets",
    columns: [
      ["Currency", (wallet) => wallet.currency],
      ["Balance", (wallet) => wallet.balance],
      ["Owner", (wallet) => el("code", wallet.userId)],
      ["Opened", (wallet) => timeEl(wallet.createdAt)],
    ],
    actions: (wallet, view) => [
      button("Owner", `Owner of the ${wallet.currency} wallet ${wallet.id}`, () =>
        view.details(`Owner of wallet ${wallet.id}`, `/api/users/${wallet.userId}`),
      ),
      button("History", `History of the ${wallet.currency} wallet ${wallet.id}`, () =>
        view.details(`History of wallet ${wallet.id}`, `/api/wallets/${wallet.id}/transactions`),
      ),
    ],
  },
  courses: {
    title: "Courses",
    path: "/api/courses",
    columns: [
      ["Title", (course) => course.title],
      ["Description", (course) => dash(course.description || null)],
      ["Created", (course) => timeEl(course.createdAt)],
    ],
    actions: (course, view) => [
      button("Lessons", `Lessons of ${course.title}`, () =>
        view.details(`Course ${course.title}`, `/api/courses/${course.id}`),
      ),
    ],
  },
};

function button(text, label, onClick) {
  const node = el("button", text, { type: "button", class: "quiet small", "aria-label": label });
  node.addEventListener("click", onClick);
  return node;
}

/** Wire the browser to its elements; `show(kind, ownerId?)` lists that kind from the start.
 * `apiOf()` is the signed-in session's API (the browser outlives sign-outs). */
export function startBrowser(apiOf, ui) {
  let kind = "users";
  let ownerId = "";
  let next = null;
  let loading = 0; // a newer request makes an older answer stale

  async function load(cursor) {
    const ticket = ++loading;
    const spec = KINDS[kind];
    const params = { limit: PAGE_SIZE, after: cursor, userId: kind === "wallets" ? ownerId : "" };
    say(ui.status, `Loading ${spec.title.toLowerCase()}…`);
    try {
      const page = await apiOf().read(spec.path, params);
      if (ticket !== loading) return;
      ui.rows.append(...page.items.map((item) => row(spec, item)));
      next = page.next;
      ui.more.hidden = next === null;
      const count = ui.rows.rows.length;
      const more = next ? "; more on the next page" : "";
      say(ui.status, count ? `${spec.title}: ${count} shown${more}.` : `No ${spec.title.toLowerCase()}.`);
    } catch (error) {
      if (ticket === loading) say(ui.status, error.message, { failed: true });
    }
  }

  function row(spec, item) {
    const tr = el("tr", null, { "data-id": item.id });
    tr.append(...spec.columns.map(([, cell]) => el("td", cell(item))));
    const actions = el("td", null, { class: "actions" });
    actions.append(...spec.actions(item, view));
    tr.append(actions);
    return tr;
  }

  const view = {
    show(which, owner = "") {
      kind = which;
      ownerId = owner;
      const spec = KINDS[kind];
      for (const toggle of ui.toggles) {
        toggle.setAttribute("aria-pressed", String(toggle.dataset.kind === kind));
      }
      ui.ownerForm.hidden = kind !== "wallets";
      ui.ownerId.value = ownerId;
      ui.caption.textContent = spec.title;
      const head = el("tr");
      head.append(...spec.columns.map(([name]) => el("th", name, { scope: "col" })));
      head.append(el("th", "Details", { scope: "col" }));
      ui.head.replaceChildren(head);
      ui.rows.replaceChildren();
      ui.more.hidden = true;
      ui.details.hidden = true;
      return load(null);
    },

    async details(title, path) {
      ui.detailsTitle.textContent = title;
      ui.detailsBody.textContent = "Loading…";
      ui.details.hidden = false;
      try {
        ui.detailsBody.textContent = JSON.stringify(await apiOf().read(path), null, 2);
      } catch (error) {
        ui.detailsBody.textContent = `${error.message} (HTTP ${error.status ?? "?"})`;
      }
      ui.details.scrollIntoView({ block: "nearest" });
    },
  };

  for (const toggle of ui.toggles) {
    toggle.addEventListener("click", () => view.show(toggle.dataset.kind));
  }
  ui.ownerForm.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    view.show("wallets", ui.ownerId.value.trim());
  });
  ui.more.addEventListener("click", () => load(next));
  return view;
}
