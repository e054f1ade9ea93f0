// The console's shell: sign-in, navigation, and one page at a time (hash routes).
import { call, remaining, signIn, signOut, token } from "./api.js";
import { auditPage } from "./audit.js";
import { errorBox, fill, h } from "./dom.js";
import { keysPage } from "./keys.js";
import { sandboxPage } from "./sandbox.js";
import { sandboxesPage } from "./sandboxes.js";
import { warmPoolsPage } from "./warmpools.js";

const ROUTES = [
  [/^#\/sandboxes\/(sb-[a-z0-9]+)$/, sandboxPage],
  [/^#\/warmpools$/, warmPoolsPage],
  [/^#\/audit$/, auditPage],
  [/^#\/keys$/, keysPage],
  [/^#\/sandboxes$/, sandboxesPage],
];

const main = document.getElementById("main");
const banner = document.getElementById("banner");
let leave = null; // the current page's cleanup (timers, sockets)
let expiry = null; // signs out when the token expires (the key is not kept to renew it)

function showBanner(message) {
  banner.hidden = !message;
  banner.className = message ? "error" : "";
  banner.textContent = message || "";
}

function signInPage(reason) {
  clearTimeout(expiry);
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  const key = h("input", {
    type: "password", name: "apiKey", autocomplete: "off", placeholder: "lsp_…", required: true,
  });
  const problem = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      fill(problem);
      try {
        await signIn(key.value);
        key.value = "";
        if (!location.hash || location.hash === "#/signin") location.hash = "#/sandboxes";
        await route();
      } catch (error) {
        fill(problem, errorBox(error));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("label", {}, "API key", key),
  submit,
  problem,
  h("p", { class: "muted" },
    "The key is exchanged for a short-lived token kept only in this tab; the key is not stored."));
  fill(main, h("section", { class: "signin" },
    h("h1", {}, "Sign in"), reason ? h("p", { class: "notice" }, reason) : null, form));
  key.focus();
}

async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  showBanner(null);
  if (!token()) {
    signInPage();
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  if (!document.getElementById("who").textContent) showWho();
  clearTimeout(expiry);
  const left = Math.min(remaining(), 2 ** 31 - 1); // setTimeout cannot wait longer
  expiry = setTimeout(() => signOut("Your session expired: sign in again."), left);
  const hash = location.hash || "#/sandboxes";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", hash.startsWith(link.getAttribute("href")));
  }
  const match = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!match) {
    location.hash = "#/sandboxes";
    return;
  }
  const [pattern, page] = match;
  const container = h("div");
  fill(main, container);
  try {
    leave = await page(container, ...hash.match(pattern).slice(1));
  } catch (error) {
    fill(container, errorBox(error));
  }
}

async function showWho() {
  try {
    const user = await call("GET", "/user");
    document.getElementById("who").textContent = `${user.username} (${user.role})`;
  } catch {
    // the page shows the failure
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("console:signed-out", (event) => {
  if (leave) {
    leave();
    leave = null;
  }
  signInPage(event.detail);
});
window.addEventListener("unhandledrejection", (event) => {
  showBanner(event.reason?.message || String(event.reason));
});
window.addEventListener("error", (event) => showBanner(event.message));
document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));

route();
