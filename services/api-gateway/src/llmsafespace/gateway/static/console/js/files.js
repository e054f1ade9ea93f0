// The sandbox's files: browse directories, upload into the current one, download, delete.
import { call, filePath } from "./api.js";
import { bytes, errorBox, fill, h, when } from "./dom.js";

const ROOTS = ["/workspace", "/tmp"]; // the API refuses paths outside them

/** The directory above `path`, or null at (or outside) the roots. */
export function parent(path) {
  const up = path.replace(/\/[^/]+\/?$/, "");
  return ROOTS.some((root) => up === root || up.startsWith(`${root}/`)) ? up : null;
}

export function filesSection(sandboxId) {
  let current = "/workspace";
  const where = h("input", { name: "path", value: current, class: "mono", size: 40 });
  const upload = h("input", { type: "file", name: "upload", multiple: true });
  const problem = h("div");
  const rows = h("tbody");
  const up = h("button", {
    type: "button", disabled: true, onclick: () => parent(current) && open(parent(current)),
  }, "Up");
  const element = h("section", {},
    h("h2", {}, "Files"),
    h("form", {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        open(where.value);
      },
    },
    h("label", {}, "Directory", where),
    h("button", { type: "submit" }, "Open"),
    up,
    h("label", {}, "Upload here", upload)),
    problem,
    h("table", { id: "files" },
      h("thead", {}, h("tr", {}, ["Name", "Size", "Modified", ""].map((t) => h("th", {}, t)))),
      rows));

  async function open(path) {
    fill(problem);
    try {
      const listing = await call("GET", `/sandboxes/${sandboxId}/files`, { query: { path } });
      current = listing.path;
      where.value = current;
      up.disabled = parent(current) === null;
      const entries = [...listing.files].sort((a, b) => (b.isDirectory - a.isDirectory) || a.name.localeCompare(b.name));
      fill(rows, entries.length ? entries.map(entry) : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "Empty.")));
      if (listing.truncated) rows.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "(more not shown)")));
    } catch (error) {
      where.value = current; // still the directory listed, where an upload goes
      fill(problem, errorBox(error));
    }
  }

  function entry(file) {
    const name = file.isDirectory
      ? h("a", { href: "#", onclick: (event) => { event.preventDefault(); open(file.path); } }, `${file.name}/`)
      : h("span", { class: "mono" }, file.name);
    return h("tr", { "data-file": file.name },
      h("td", {}, name),
      h("td", {}, file.isDirectory ? "" : bytes(file.size)),
      h("td", {}, when(file.modifiedAt)),
      h("td", {},
        file.isDirectory ? null : h("button", { type: "button", onclick: () => download(file) }, "Download"),
        " ",
        h("button", { type: "button", class: "danger", onclick: () => remove(file) }, "Delete")));
  }

  async function download(file) {
    fill(problem);
    try {
      const response = await call("GET", filePath(sandboxId, file.path), { raw: true });
      const url = URL.createObjectURL(await response.blob());
      const link = h("a", { href: url, download: file.name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }

  async function remove(file) {
    fill(problem);
    try {
      await call("DELETE", filePath(sandboxId, file.path), { query: { recursive: file.isDirectory ? "true" : undefined } });
      await open(current);
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }

  upload.addEventListener("change", async () => {
    fill(problem);
    try {
      for (const file of upload.files) {
        await call("PUT", filePath(sandboxId, `${current.replace(/\/$/, "")}/${file.name}`), { body: file });
      }
    } catch (error) {
      fill(problem, errorBox(error));
    }
    upload.value = "";
    await open(current);
  });

  return { element, start: () => open(current), stop: () => {} };
}
