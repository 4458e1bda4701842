/**
 * The pure parts of `tools/lint_layers.ts` (`deno task lint:layers`): layer
 * classification, the import rules, cycle finding and the text checks, on
 * synthetic graphs.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { leakCheckedTest } from "./helpers.ts";
import {
  checkEdge,
  checkGraph,
  checkText,
  classifyPath,
  type DenoInfo,
  findCycles,
  formatCycle,
  graphFromDenoInfo,
  type ModuleGraph,
} from "../tools/lint_layers.ts";

/** A graph from `module -> imports`; an import written `type:x` is type-only. */
function graph(modules: Record<string, string[]>): ModuleGraph {
  return new Map(
    Object.entries(modules).map(([module, imports]) => [
      module,
      imports.map((specifier) =>
        specifier.startsWith("type:")
          ? { specifier: specifier.slice("type:".length), typeOnly: true }
          : { specifier, typeOnly: false }
      ),
    ]),
  );
}

// Built by concatenation so that the text check does not flag this file.
const BUILD_OS = "Deno.build" + ".os";
const SHARED = ".." + "/shared";

leakCheckedTest("classifyPath() puts each path in its layer", () => {
  assertEquals(classifyPath("ffi/libc.ts"), "ffi");
  assertEquals(classifyPath("src/core/errors.ts"), "core");
  assertEquals(classifyPath("src/async/poller.ts"), "async");
  assertEquals(classifyPath("src/adapters/streams.ts"), "adapters");
  assertEquals(classifyPath("src/owned_fd.ts"), "public");
  assertEquals(classifyPath("src/extras/memfd.ts"), "extras");
  assertEquals(classifyPath("src/cli/args.ts"), "cli");
  assertEquals(classifyPath("mod.ts"), "mod.ts");
  assertEquals(classifyPath("cli.ts"), "cli.ts");
});

leakCheckedTest("classifyPath() leaves paths outside the layers unclassified", () => {
  assertEquals(classifyPath("tests/helpers.ts"), undefined);
  assertEquals(classifyPath("src/misc/x.ts"), undefined);
  assertEquals(classifyPath("lib/mod.ts"), undefined);
  assertEquals(classifyPath("/elsewhere/x.ts"), undefined);
});

leakCheckedTest("checkEdge() rejects an import from core into async", () => {
  assertEquals(
    checkEdge("src/core/x.ts", "src/async/y.ts"),
    "core may import only ffi/ and src/core/",
  );
  assertEquals(checkEdge("src/async/y.ts", "src/core/x.ts"), undefined);
});

leakCheckedTest("checkEdge() rejects an import from the cli into ffi/", () => {
  assertEquals(
    checkEdge("src/cli/info.ts", "ffi/libc.ts"),
    "cli may not import ffi/ (the CLI makes no libc calls of its own)",
  );
  assertEquals(checkEdge("src/cli/info.ts", "src/extras/memfd.ts"), undefined);
});

leakCheckedTest("checkEdge() keeps adapters off the public classes", () => {
  assertEquals(
    checkEdge("src/adapters/streams.ts", "src/unix_socket.ts"),
    "adapters may import only ffi/, src/core/, src/async/ and src/adapters/",
  );
});

leakCheckedTest("checkEdge() lets nothing import the entry points", () => {
  assertEquals(checkEdge("src/cli/args.ts", "cli.ts"), "nothing may import cli.ts");
  assertEquals(checkEdge("src/extras/memfd.ts", "mod.ts"), "nothing may import mod.ts");
  assertEquals(checkEdge("mod.ts", "src/cli/args.ts"), "mod.ts may not import src/cli/");
  assertEquals(checkEdge("cli.ts", "src/cli/args.ts"), undefined);
  assertEquals(checkEdge("cli.ts", "src/unix_socket.ts"), undefined);
});

leakCheckedTest("checkEdge() allows node: only in adapters, extras and the cli", () => {
  assertEquals(
    checkEdge("src/core/x.ts", "node:net"),
    "node: imports are allowed only in src/adapters/, src/extras/, src/cli/ and cli.ts",
  );
  assertEquals(checkEdge("mod.ts", "node:net") !== undefined, true);
  assertEquals(checkEdge("src/adapters/handoff.ts", "node:net"), undefined);
  assertEquals(checkEdge("cli.ts", "node:process"), undefined);
});

leakCheckedTest("checkEdge() allows npm:, jsr: and https: only in the cli", () => {
  const reason = "npm:, jsr: and https: imports are allowed only in src/cli/ and cli.ts";
  assertEquals(checkEdge("src/extras/x.ts", "npm:/deno-std@1.4.0/cli/parse_args.js"), reason);
  assertEquals(checkEdge("src/core/x.ts", "https://jsr.io/@std/path/1.0.0/mod.ts"), reason);
  assertEquals(checkEdge("src/cli/args.ts", "npm:/deno-std@1.4.0/cli/parse_args.js"), undefined);
});

leakCheckedTest("findCycles() reports a cycle of three modules", () => {
  const cycles = findCycles(graph({
    "src/a.ts": ["src/b.ts", "ffi/libc.ts"],
    "src/b.ts": ["src/c.ts"],
    "src/c.ts": ["src/a.ts", "node:net"],
    "ffi/libc.ts": [],
  }));
  assertEquals(cycles, [{
    modules: ["src/a.ts", "src/b.ts", "src/c.ts"],
    path: ["src/a.ts", "src/b.ts", "src/c.ts", "src/a.ts"],
  }]);
  assertEquals(
    formatCycle(cycles[0]!),
    "import cycle: src/a.ts -> src/b.ts -> src/c.ts -> src/a.ts",
  );
});

leakCheckedTest("findCycles() counts type-only imports", () => {
  const cycles = findCycles(graph({
    "src/unix_socket.ts": ["src/unix_listener.ts"],
    "src/unix_listener.ts": ["type:src/unix_socket.ts"],
  }));
  assertEquals(cycles.map((cycle) => cycle.modules), [[
    "src/unix_listener.ts",
    "src/unix_socket.ts",
  ]]);
});

leakCheckedTest("findCycles() reports a module that imports itself and nothing acyclic", () => {
  const cycles = findCycles(graph({
    "src/a.ts": ["src/a.ts"],
    "src/b.ts": ["src/c.ts"],
    "src/c.ts": [],
  }));
  assertEquals(cycles, [{ modules: ["src/a.ts"], path: ["src/a.ts", "src/a.ts"] }]);
});

leakCheckedTest("formatCycle() lists every module of a component larger than its cycle", () => {
  const [cycle] = findCycles(graph({
    "src/a.ts": ["src/b.ts"],
    "src/b.ts": ["src/a.ts", "src/c.ts"],
    "src/c.ts": ["src/b.ts"],
  }));
  assertEquals(
    formatCycle(cycle!),
    "import cycle: src/a.ts -> src/b.ts -> src/a.ts " +
      "(component of 3 modules: src/a.ts, src/b.ts, src/c.ts)",
  );
});

leakCheckedTest("checkGraph() reports a type-only import that breaks the layers", () => {
  const report = checkGraph(graph({
    "mod.ts": ["src/core/x.ts"],
    "src/core/x.ts": ["type:src/async/y.ts", "type:node:net"],
    "src/async/y.ts": [],
  }));
  assertEquals(report.violations, [
    "src/core/x.ts -> node:net: node: imports are allowed only in src/adapters/, src/extras/, " +
    "src/cli/ and cli.ts (type-only import)",
    "src/core/x.ts -> src/async/y.ts: core may import only ffi/ and src/core/ (type-only import)",
  ]);
  assertEquals(report.cycles, []);
  assertEquals(report.modules, 3);
});

leakCheckedTest("checkGraph() reports an npm: import reachable from mod.ts", () => {
  const report = checkGraph(graph({
    "mod.ts": ["src/misc/x.ts"],
    "src/misc/x.ts": ["npm:/left-pad@1.3.0"],
  }));
  assertEquals(report.violations, [
    "mod.ts -> src/misc/x.ts -> npm:/left-pad@1.3.0: " +
    "mod.ts must have no npm:, jsr: or https: dependencies",
  ]);
});

leakCheckedTest("checkGraph() reports an unclassified module with its importers", () => {
  const report = checkGraph(graph({
    "mod.ts": ["src/misc/x.ts"],
    "src/misc/x.ts": ["ffi/libc.ts"],
    "ffi/libc.ts": [],
  }));
  assertEquals(report.unclassified, [
    "src/misc/x.ts: unclassified module, under none of ffi/, src/core/, src/async/, " +
    "src/adapters/, src/*.ts, src/extras/, src/cli/, mod.ts and cli.ts (imported by mod.ts)",
  ]);
  assertEquals(report.violations, []);
});

leakCheckedTest("checkGraph() passes a graph that follows the layers", () => {
  const report = checkGraph(graph({
    "mod.ts": ["src/unix_socket.ts", "src/extras/memfd.ts"],
    "cli.ts": ["src/cli/args.ts", "src/unix_socket.ts"],
    "src/cli/args.ts": ["npm:/deno-std@1.4.0/cli/parse_args.js", "node:process"],
    "src/extras/memfd.ts": ["src/unix_socket.ts", "node:fs"],
    "src/unix_socket.ts": ["src/adapters/streams.ts", "type:src/core/message.ts"],
    "src/adapters/streams.ts": ["src/async/poller.ts", "node:net"],
    "src/async/poller.ts": ["src/core/message.ts"],
    "src/core/message.ts": ["ffi/libc.ts"],
    "ffi/libc.ts": ["ffi/layout.ts"],
    "ffi/layout.ts": [],
  }));
  assertEquals(report, { modules: 10, cycles: [], violations: [], unclassified: [] });
});

leakCheckedTest("graphFromDenoInfo() merges roots and keeps type-only dependencies", () => {
  const root = "file:///repo/";
  const infos: DenoInfo[] = [
    {
      modules: [
        {
          specifier: `${root}mod.ts`,
          dependencies: [
            { specifier: "./src/a.ts", code: { specifier: `${root}src/a.ts` } },
            { specifier: "./src/b.ts", type: { specifier: `${root}src/b.ts` } },
          ],
        },
        { specifier: `${root}src/a.ts` },
        { specifier: `${root}src/b.ts` },
      ],
    },
    {
      modules: [
        {
          specifier: `${root}cli.ts`,
          dependencies: [
            { specifier: "./src/a.ts", code: { specifier: `${root}src/a.ts` } },
            { specifier: "./gone.ts", code: { error: "Module not found" } },
          ],
        },
        {
          specifier: `${root}src/a.ts`,
          dependencies: [{ specifier: "@std/cli", code: { specifier: "npm:/deno-std@1.4.0" } }],
        },
        { specifier: "npm:/deno-std@1.4.0" },
      ],
    },
  ];
  const { graph, errors } = graphFromDenoInfo(infos, root);
  assertEquals(Object.fromEntries(graph), {
    "mod.ts": [
      { specifier: "src/a.ts", typeOnly: false },
      { specifier: "src/b.ts", typeOnly: true },
    ],
    "src/a.ts": [{ specifier: "npm:/deno-std@1.4.0", typeOnly: false }],
    "src/b.ts": [],
    "cli.ts": [{ specifier: "src/a.ts", typeOnly: false }],
  });
  assertEquals(errors, ["cli.ts -> ./gone.ts: Module not found"]);
});

leakCheckedTest("checkText() flags reading the OS name outside ffi/ only", () => {
  const text = `const a = 1;\nif (${BUILD_OS} === "linux") {}\n`;
  assertEquals(checkText("tests/x_test.ts", text), [
    `tests/x_test.ts:2: ${BUILD_OS} outside ffi/ (platform differences belong in ffi/ layout data)`,
  ]);
  assertEquals(checkText("ffi/layout.ts", text), []);
  assertEquals(checkText("README.md", text), []);
  assertEquals(checkText("tools/lint_layers.ts", text), []);
});

leakCheckedTest("checkText() flags mentions of the shared workspace in any file", () => {
  assertEquals(checkText("README.md", `see ${SHARED}/reference/x.md\n`), [
    `README.md:1: mentions "${SHARED}", which is outside the repository`,
  ]);
  assertEquals(checkText("ffi/layout.ts", `// ${SHARED.slice(3)}/reference/a.md`).length, 1);
  assertEquals(checkText("tools/lint_layers.ts", SHARED), []);
});
