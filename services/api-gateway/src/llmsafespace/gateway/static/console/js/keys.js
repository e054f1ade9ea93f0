// The caller's API keys: list, create (the key is shown once), revoke.
import { call } from "./api.js";
import { errorBox, fill, h, when } from "./dom.js";

const MAX_EXPIRY_DAYS = 3650; // what the API accepts

export async function keysPage(container) {
  const name = h("input", { name: "name", required: true, placeholder: "laptop" });
  const days = h("input", { type: "number", name: "expiresInDays", min: 1, max: MAX_EXPIRY_DAYS, placeholder: "never" });
  const problem = h("div");
  const created = h("div");
  const rows = h("tbody");

  async function refresh() {
    try {
      const { apiKeys } = await call("GET", "/user/apikeys");
      fill(rows, apiKeys.map((key) => h("tr", { "data-key": key.id },
        h("td", {}, key.name),
        h("td", { class: "mono" }, `${key.prefix}…`),
        h("td", {}, when(key.createdAt)),
        h("td", {}, key.expiresAt ? when(key.expiresAt) : "never"),
        h("td", {}, key.revokedAt ? `revoked ${when(key.revokedAt)}` : "active"),
        h("td", {}, key.revokedAt ? null : h("button", {
          type: "button",
          class: "danger",
          onclick: async () => {
            fill(problem);
            try {
              await call("DELETE", `/user/apikeys/${key.id}`);
            } catch (error) {
              fill(problem, errorBox(error));
            }
            await refresh();
          },
        }, "Revoke")))));
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }

  fill(container,
    h("h1", {}, "API keys"),
    h("form", {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        fill(problem);
        fill(created);
        try {
          const body = { name: name.value };
          if (days.value) body.expiresInDays = Number(days.value);
          const key = await call("POST", "/user/apikeys", { json: body });
          name.value = "";
          fill(created, h("div", { class: "notice" },
            h("p", {}, `Key “${key.name}” — shown this once, copy it now:`),
            h("p", { class: "secret", id: "new-key" }, key.apiKey)));
          await refresh();
        } catch (error) {
          fill(problem, errorBox(error));
        }
      },
    },
    h("label", {}, "Name", name),
    h("label", {}, "Expires in (days)", days),
    h("button", { type: "submit", class: "primary" }, "Create key")),
    problem,
    created,
    h("table", { id: "keys" },
      h("thead", {}, h("tr", {},
        ["Name", "Prefix", "Created", "Expires", "State", ""].map((t) => h("th", {}, t)))),
      rows));
  await refresh();
  return () => {};
}
