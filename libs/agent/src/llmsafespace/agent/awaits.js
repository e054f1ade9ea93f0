// Top-level `await` in a JavaScript cell (required by repl.js only for a cell that does
// not compile without it). The cell becomes the body of an async arrow function whose
// promise the worker awaits: its top-level declarations become assignments, so what it
// declares outlives it as the context's globals (a `const` as a plain variable), and its
// last expression statement is returned as the cell's value. The arrow starts on the
// cell's first line, so tracebacks keep the cell's line numbers.
"use strict";

const acorn = require("./acorn.js");

const PREFIX = "(async () => { ";
const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

// The cell rewritten to run as an async function, or null where that cannot help: it
// does not parse even so, or it has a top-level `return` (a syntax error as it stands).
function wrapTopLevelAwait(code) {
  const wrapped = `${PREFIX}${code}\n})()`;
  let program;
  try {
    program = acorn.parse(wrapped, { ecmaVersion: "latest" });
  } catch {
    return null;
  }
  const edits = new Edits(wrapped);
  const statements = program.body[0].expression.callee.body.body;
  let returns = false;

  // `var` anywhere but in a nested function; `let`, `const`, `function` and `class` at top.
  function visit(node, topLevel) {
    if (FUNCTIONS.has(node.type) && !(topLevel && node.type === "FunctionDeclaration")) return;
    if (node.type === "ClassExpression" || (node.type === "ClassDeclaration" && !topLevel)) return;
    switch (node.type) {
      case "ReturnStatement":
        returns = true;
        return;
      case "FunctionDeclaration":
      case "ClassDeclaration": // `name=function name() {…};`: its name outlives the cell
        edits.insert(node.start, `${node.id.name}=`);
        edits.insert(node.end, ";");
        return;
      case "VariableDeclaration":
        if (node.kind === "var" || topLevel) assign(node);
        break;
      case "ForInStatement":
      case "ForOfStatement": // `for (var x of …)`: `for (x of …)`
        if (node.left.type === "VariableDeclaration" && node.left.kind === "var") {
          edits.drop(node.left.start, node.left.start + node.left.kind.length);
          visit(node.right, false);
          visit(node.body, false);
          return;
        }
        break;
    }
    children(node, false);
  }

  function children(node, topLevel) {
    for (const value of Object.values(node)) {
      for (const child of Array.isArray(value) ? value : [value]) {
        if (child && typeof child.type === "string") visit(child, topLevel);
      }
    }
  }

  // `const a = 1, {b} = c;` becomes `void ((a = 1), ({b} = c));`.
  function assign(declaration) {
    edits.drop(declaration.start, declaration.start + declaration.kind.length);
    edits.insert(declaration.start, "void (");
    for (const declarator of declaration.declarations) {
      edits.insert(declarator.start, "(");
      edits.insert(declarator.end, declarator.init ? ")" : "=undefined)");
    }
    edits.insert(declaration.declarations.at(-1).end, ")");
  }

  for (const statement of statements) visit(statement, true);
  if (returns) return null;
  const last = statements.at(-1);
  if (last?.type === "ExpressionStatement") {
    edits.insert(last.start, "return (");
    edits.insert(last.expression.end, ")");
  }
  return edits.apply();
}

// Insertions and deletions by position in the original text; insertions at one position
// keep the order they were made in.
class Edits {
  constructor(text) {
    this.text = text;
    this.inserts = new Map();
    this.dropped = new Set();
  }

  insert(position, text) {
    this.inserts.set(position, (this.inserts.get(position) ?? "") + text);
  }

  drop(start, end) {
    for (let position = start; position < end; position += 1) this.dropped.add(position);
  }

  apply() {
    let out = "";
    for (let position = 0; position <= this.text.length; position += 1) {
      out += this.inserts.get(position) ?? "";
      if (position < this.text.length && !this.dropped.has(position)) out += this.text[position];
    }
    return out;
  }
}

module.exports = { wrapTopLevelAwait };
