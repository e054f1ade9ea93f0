// Copies the pinned acorn (the JavaScript parser the worker's top-level await needs) into
// the agent's package, committed there: sandboxes have no registry. Run: npm ci && npm run vendor
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "src", "llmsafespace", "agent");
const acorn = join(here, "node_modules", "acorn");
// The CommonJS build; its source-map comment dropped (the map is not vendored).
const text = readFileSync(join(acorn, "dist", "acorn.js"), "utf8");
writeFileSync(join(target, "acorn.js"), text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n"));
writeFileSync(join(target, "LICENSE.acorn"), readFileSync(join(acorn, "LICENSE")));
const { version } = JSON.parse(readFileSync(join(acorn, "package.json"), "utf8"));
console.log(`vendored acorn ${version} into ${target}`);
