// The audit trail, filtered by sandbox, user, time and count (admins see everyone's).
import { call } from "./api.js";
import { errorBox, fill, h, when } from "./dom.js";

export async function auditPage(container) {
  const sandboxId = h("input", { name: "sandboxId", placeholder: "sb-…", class: "mono" });
  const userId = h("input", { name: "userId", placeholder: "usr-…", class: "mono" });
  const since = h("input", { type: "datetime-local", name: "since" });
  const limit = h("input", { type: "number", name: "limit", min: 1, max: 500, value: "100" });
  const problem = h("div");
  const rows = h("tbody");
  const more = h("p", { class: "muted" });

  async function search() {
    fill(problem);
    try {
      const page = await call("GET", "/audit", {
        query: {
          sandboxId: sandboxId.value.trim(),
          userId: userId.value.trim(),
          since: since.value ? new Date(since.value).toISOString() : "",
          limit: limit.value,
        },
      });
      fill(rows, page.events.length ? page.events.map((e) => h("tr", {},
        h("td", {}, when(e.occurredAt)),
        h("td", {}, e.kind),
        h("td", {}, e.event),
        h("td", {}, e.outcome ?? ""),
        h("td", { class: "mono" }, e.sandboxId ?? ""),
        h("td", { class: "mono" }, e.executionId ?? ""),
        h("td", { class: "mono" }, e.userId ?? "")))
        : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No events.")));
      fill(more, page.hasMore ? `More than ${page.limit} events match: narrow the filter.` : "");
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }

  fill(container,
    h("h1", {}, "Audit trail"),
    h("form", {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        search();
      },
    },
    h("label", {}, "Sandbox", sandboxId),
    h("label", {}, "User", userId),
    h("label", {}, "Since", since),
    h("label", {}, "Limit", limit),
    h("button", { type: "submit", class: "primary" }, "Filter")),
    problem,
    h("table", { id: "audit" },
      h("thead", {}, h("tr", {},
        ["When", "Kind", "Event", "Outcome", "Sandbox", "Execution", "User"].map((t) => h("th", {}, t)))),
      rows),
    more);
  await search();
  return () => {};
}
