// Copies the pinned npm packages the console uses into the gateway's static files
// (committed there, so the gateway serves them offline). Run: npm ci && npm run vendor
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "services", "api-gateway", "src", "llmsafespace", "gateway",
  "static", "console", "vendor");
const modules = join(here, "node_modules");
// Module builds renamed .js (a JavaScript MIME type everywhere); source-map comments dropped.
const files = [
  ["@xterm/xterm/lib/xterm.mjs", "xterm.js"],
  ["@xterm/xterm/css/xterm.css", "xterm.css"],
  ["@xterm/addon-fit/lib/addon-fit.mjs", "addon-fit.js"],
  ["@xterm/xterm/LICENSE", "LICENSE.xterm"],
];

mkdirSync(target, { recursive: true });
const versions = {};
for (const [source, name] of files) {
  const text = readFileSync(join(modules, source), "utf8");
  writeFileSync(join(target, name), text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n"));
  const pkg = source.split("/").slice(0, 2).join("/");
  versions[pkg] = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
}
writeFileSync(join(target, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendored into ${target}:`, versions);
