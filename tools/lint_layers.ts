/**
 * `lint:layers`: checks that the import graph of `mod.ts` and `cli.ts` has no
 * cycles and only points down the layers, and that a few strings stay out of
 * the repository. Run it from the repository root:
 *
 * ```sh
 * deno run --allow-run --allow-read tools/lint_layers.ts
 * ```
 *
 * Layers, lowest first: `ffi/**`, `src/core/**`, `src/async/**`,
 * `src/adapters/**`, `src/*.ts` (the public classes), `src/extras/**`,
 * `src/cli/**`, then the entry points `mod.ts` and `cli.ts`. Type-only imports
 * count as much as code imports. Problems go to stderr, one a line, and the
 * exit code is 1; otherwise one summary line goes to stdout.
 *
 * In the spirit of denoland/std `_tools/check_circular_package_dependencies.ts`.
 *
 * @module
 */

/** Where a module sits in the layering; `undefined` from {@linkcode classifyPath} means nowhere. */
export type Layer =
  | "ffi"
  | "core"
  | "async"
  | "adapters"
  | "public"
  | "extras"
  | "cli"
  | "mod.ts"
  | "cli.ts";

/** One import of a local module. */
export interface Dependency {
  /** A path relative to the repository root for local modules, else the resolved specifier (`node:net`, `npm:...`). */
  specifier: string;
  /** Whether the import is only seen by the type checker (`import type`, `@ts-types`). */
  typeOnly: boolean;
}

/** Local modules (paths relative to the repository root) and their imports. */
export type ModuleGraph = Map<string, Dependency[]>;

/** A strongly connected component of the import graph. */
export interface Cycle {
  /** Every module of the component, sorted. */
  modules: string[];
  /** One closed walk through the component, starting and ending at `modules[0]`. */
  path: string[];
}

/** What {@linkcode checkGraph} found. */
export interface GraphReport {
  /** Number of local modules in the graph. */
  modules: number;
  /** Import cycles. */
  cycles: Cycle[];
  /** Imports that break the layer or external-specifier rules, one message each. */
  violations: string[];
  /** Local modules under none of the layer paths, one message each. */
  unclassified: string[];
}

/** The entry points the graph is built from. */
export const ROOTS: readonly string[] = ["mod.ts", "cli.ts"];

/** This file, which names the strings it looks for and so is exempt from the text checks. */
const SELF = "tools/lint_layers.ts";

/** Lowest layer first; the order of this list is the order of the messages. */
const LAYER_ORDER: readonly Layer[] = [
  "ffi",
  "core",
  "async",
  "adapters",
  "public",
  "extras",
  "cli",
  "mod.ts",
  "cli.ts",
];

const LAYER_PATH: Record<Layer, string> = {
  "ffi": "ffi/",
  "core": "src/core/",
  "async": "src/async/",
  "adapters": "src/adapters/",
  "public": "src/*.ts",
  "extras": "src/extras/",
  "cli": "src/cli/",
  "mod.ts": "mod.ts",
  "cli.ts": "cli.ts",
};

const LAYER_NAME: Record<Layer, string> = {
  "ffi": "ffi",
  "core": "core",
  "async": "async",
  "adapters": "adapters",
  "public": "public (src/*.ts)",
  "extras": "extras",
  "cli": "cli",
  "mod.ts": "mod.ts",
  "cli.ts": "cli.ts",
};

const BELOW_CLI: readonly Layer[] = ["ffi", "core", "async", "adapters", "public", "extras"];

/** Which layers each layer may import. */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  "ffi": ["ffi"],
  "core": ["ffi", "core"],
  "async": ["ffi", "core", "async"],
  "adapters": ["ffi", "core", "async", "adapters"],
  "public": ["ffi", "core", "async", "adapters", "public"],
  "extras": [...BELOW_CLI],
  // The CLI makes no libc calls of its own.
  "cli": ["core", "async", "adapters", "public", "extras", "cli"],
  "mod.ts": [...BELOW_CLI],
  "cli.ts": [...BELOW_CLI, "cli"],
};

/** Layers that may import `node:*`. */
const NODE_ALLOWED: readonly Layer[] = ["adapters", "extras", "cli", "cli.ts"];
/**
 * The one module below the adapters that may import a `node:` module: the
 * io_uring backend hands its doorbell socket to Deno's event loop as a
 * `node:net` socket, the only public way to have Deno watch an fd.
 */
const NODE_NET_IN_ASYNC = "src/async/uring_backend.ts";
/** Layers that may import `npm:`, `jsr:`, `https:` and other remote modules. */
const REMOTE_ALLOWED: readonly Layer[] = ["cli", "cli.ts"];

/**
 * The layer of a module path.
 *
 * @param path A path relative to the repository root, with `/` separators.
 * @returns The layer, or `undefined` if the path is under none of the layer paths.
 */
export function classifyPath(path: string): Layer | undefined {
  if (path === "mod.ts") return "mod.ts";
  if (path === "cli.ts") return "cli.ts";
  if (path.startsWith("ffi/")) return "ffi";
  const sub = /^src\/(core|async|adapters|extras|cli)\/./.exec(path);
  if (sub) return sub[1] as Layer;
  if (/^src\/[^/]+\.ts$/.test(path)) return "public";
  return undefined;
}

/**
 * Whether a dependency is outside the repository's local modules.
 *
 * @param specifier A {@linkcode Dependency} specifier.
 * @returns `true` for a URL-like specifier (`node:`, `npm:`, `https:`, ...).
 */
export function isExternal(specifier: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(specifier);
}

function listPaths(layers: readonly Layer[]): string {
  const paths = layers.map((layer) => LAYER_PATH[layer]);
  if (paths.length <= 1) return paths.join("");
  return `${paths.slice(0, -1).join(", ")} and ${paths.at(-1)}`;
}

/**
 * Checks one import against the layer rules.
 *
 * @param from The importing module, relative to the repository root.
 * @param to The imported module: a relative path, or an external specifier.
 * @returns Why the import is not allowed, or `undefined` if it is allowed (or
 * if either side is unclassified, which is reported per module instead).
 */
export function checkEdge(from: string, to: string): string | undefined {
  const source = classifyPath(from);
  if (source === undefined) return undefined;
  if (isExternal(to)) {
    if (to.startsWith("node:")) {
      if (NODE_ALLOWED.includes(source)) return undefined;
      if (source === "async" && to === "node:net" && from === NODE_NET_IN_ASYNC) return undefined;
      return `node: imports are allowed only in ${listPaths(NODE_ALLOWED)}`;
    }
    if (REMOTE_ALLOWED.includes(source)) return undefined;
    return `npm:, jsr: and https: imports are allowed only in ${listPaths(REMOTE_ALLOWED)}`;
  }
  const target = classifyPath(to);
  if (target === undefined) return undefined;
  if (target === "mod.ts" || target === "cli.ts") return `nothing may import ${target}`;
  if (ALLOWED[source].includes(target)) return undefined;
  if (source === "cli" && target === "ffi") {
    return "cli may not import ffi/ (the CLI makes no libc calls of its own)";
  }
  if (source === "mod.ts" && target === "cli") return "mod.ts may not import src/cli/";
  return `${LAYER_NAME[source]} may import only ${listPaths(ALLOWED[source])}`;
}

/**
 * Finds the import cycles with Tarjan's strongly connected components
 * algorithm. Type-only imports count; external specifiers are ignored.
 *
 * @param graph The local module graph.
 * @returns Each component of more than one module, or of one module that
 * imports itself, sorted by its first module.
 */
export function findCycles(graph: ModuleGraph): Cycle[] {
  const successors = (module: string): string[] =>
    (graph.get(module) ?? [])
      .map((dependency) => dependency.specifier)
      .filter((specifier) => !isExternal(specifier));
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];

  const visit = (module: string): void => {
    index.set(module, index.size);
    lowLink.set(module, index.get(module)!);
    stack.push(module);
    onStack.add(module);
    for (const next of successors(module)) {
      if (!index.has(next)) {
        visit(next);
        lowLink.set(module, Math.min(lowLink.get(module)!, lowLink.get(next)!));
      } else if (onStack.has(next)) {
        lowLink.set(module, Math.min(lowLink.get(module)!, index.get(next)!));
      }
    }
    if (lowLink.get(module) === index.get(module)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== module);
      components.push(component);
    }
  };

  for (const module of [...graph.keys()].sort()) {
    if (!index.has(module)) visit(module);
  }

  const cycles: Cycle[] = [];
  for (const component of components) {
    const modules = component.sort();
    const first = modules[0]!;
    if (modules.length === 1 && !successors(first).includes(first)) continue;
    cycles.push({ modules, path: walkBack(first, new Set(modules), successors) });
  }
  return cycles.sort((a, b) => a.modules[0]!.localeCompare(b.modules[0]!));
}

/** A shortest walk from `start` back to itself inside `members` (breadth first). */
function walkBack(
  start: string,
  members: Set<string>,
  successors: (module: string) => string[],
): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const module = queue[i]!;
    for (const next of successors(module).sort()) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at = module; at !== start; at = previous.get(at)!) path.push(at);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (!previous.has(next)) {
        previous.set(next, module);
        queue.push(next);
      }
    }
  }
  return [start];
}

/**
 * Formats a cycle for the problem list.
 *
 * @param cycle A cycle from {@linkcode findCycles}.
 * @returns One line: the walk, then every module if the component is larger.
 */
export function formatCycle(cycle: Cycle): string {
  const walk = cycle.path.join(" -> ");
  if (cycle.path.length - 1 >= cycle.modules.length) return `import cycle: ${walk}`;
  return `import cycle: ${walk} (component of ${cycle.modules.length} modules: ${
    cycle.modules.join(", ")
  })`;
}

/**
 * A shortest chain of imports from `root` to an `npm:`, `jsr:` or `https:`
 * module, if there is one.
 *
 * @param graph The local module graph.
 * @param root The module to start from.
 * @returns The chain from `root` to the remote specifier, or `undefined`.
 */
export function findRemoteDependency(graph: ModuleGraph, root: string): string[] | undefined {
  const previous = new Map<string, string>([[root, root]]);
  const queue = [root];
  for (let i = 0; i < queue.length; i++) {
    const module = queue[i]!;
    for (const { specifier } of graph.get(module) ?? []) {
      if (previous.has(specifier)) continue;
      previous.set(specifier, module);
      if (isExternal(specifier)) {
        if (specifier.startsWith("node:")) continue;
        const chain = [specifier];
        for (let at = module; at !== root; at = previous.get(at)!) chain.push(at);
        return [root, ...chain.reverse()];
      }
      queue.push(specifier);
    }
  }
  return undefined;
}

/**
 * Checks a module graph: cycles, layer rules for every import (type-only
 * included), external specifiers, unclassified modules, and that `mod.ts`
 * reaches no remote module.
 *
 * @param graph The local module graph.
 * @returns The problems found, and the module count.
 */
export function checkGraph(graph: ModuleGraph): GraphReport {
  const violations: string[] = [];
  const importers = new Map<string, Set<string>>();
  for (const [from, dependencies] of graph) {
    for (const { specifier, typeOnly } of dependencies) {
      if (!isExternal(specifier)) {
        const set = importers.get(specifier) ?? new Set();
        importers.set(specifier, set.add(from));
      }
      const reason = checkEdge(from, specifier);
      if (reason !== undefined) {
        violations.push(
          `${from} -> ${specifier}: ${reason}${typeOnly ? " (type-only import)" : ""}`,
        );
      }
    }
  }
  if (graph.has("mod.ts")) {
    const chain = findRemoteDependency(graph, "mod.ts");
    if (chain !== undefined) {
      violations.push(
        `${chain.join(" -> ")}: mod.ts must have no npm:, jsr: or https: dependencies`,
      );
    }
  }
  const unclassified: string[] = [];
  for (const module of graph.keys()) {
    if (classifyPath(module) !== undefined) continue;
    const by = [...(importers.get(module) ?? [])].sort();
    unclassified.push(
      `${module}: unclassified module, under none of ${listPaths(LAYER_ORDER)}` +
        (by.length > 0 ? ` (imported by ${by.join(", ")})` : ""),
    );
  }
  return {
    modules: graph.size,
    cycles: findCycles(graph),
    violations: [...new Set(violations)].sort(),
    unclassified: unclassified.sort(),
  };
}

/** The parts of `deno info --json` output this tool reads. */
export interface DenoInfo {
  /** Every module of the graph. */
  modules: {
    specifier: string;
    error?: string;
    dependencies?: {
      specifier: string;
      code?: { specifier?: string; error?: string };
      type?: { specifier?: string; error?: string };
    }[];
    typesDependency?: { specifier: string; dependency?: { specifier?: string } };
  }[];
}

/**
 * Turns a specifier from `deno info` into a {@linkcode Dependency} specifier.
 *
 * @param specifier A resolved specifier.
 * @param rootUrl The repository root as a `file://` URL ending in `/`.
 * @returns A path relative to the root for local files (absolute for local
 * files elsewhere), else the specifier unchanged.
 */
export function localPath(specifier: string, rootUrl: string): string {
  if (!specifier.startsWith("file:")) return specifier;
  if (specifier.startsWith(rootUrl)) return decodeURIComponent(specifier.slice(rootUrl.length));
  return decodeURIComponent(new URL(specifier).pathname);
}

/**
 * Merges the module graphs of one or more `deno info --json` runs into the
 * graph of local modules. A dependency counts when it has a `code` or a `type`
 * resolution; it is type-only when it has no `code` one.
 *
 * @param infos Parsed `deno info --json` outputs.
 * @param rootUrl The repository root as a `file://` URL ending in `/`.
 * @returns The graph, and one message per module or import deno could not resolve.
 */
export function graphFromDenoInfo(
  infos: DenoInfo[],
  rootUrl: string,
): { graph: ModuleGraph; errors: string[] } {
  const edges = new Map<string, Map<string, boolean>>();
  const errors: string[] = [];
  const add = (from: string, to: string, typeOnly: boolean): void => {
    const targets = edges.get(from)!;
    targets.set(to, (targets.get(to) ?? true) && typeOnly);
  };
  for (const info of infos) {
    for (const module of info.modules) {
      if (!module.specifier.startsWith("file:")) continue;
      const from = localPath(module.specifier, rootUrl);
      if (!edges.has(from)) edges.set(from, new Map());
      if (module.error !== undefined) errors.push(`${from}: ${module.error}`);
      for (const dependency of module.dependencies ?? []) {
        for (
          const [resolution, typeOnly] of [[dependency.code, false], [
            dependency.type,
            true,
          ]] as const
        ) {
          if (resolution === undefined) continue;
          if (resolution.error !== undefined) {
            errors.push(`${from} -> ${dependency.specifier}: ${resolution.error}`);
          } else if (resolution.specifier !== undefined) {
            add(from, localPath(resolution.specifier, rootUrl), typeOnly);
          }
        }
      }
      const types = module.typesDependency?.dependency?.specifier;
      if (types !== undefined) add(from, localPath(types, rootUrl), true);
    }
  }
  const graph: ModuleGraph = new Map();
  for (const [from, targets] of edges) {
    graph.set(from, [...targets].map(([specifier, typeOnly]) => ({ specifier, typeOnly })));
  }
  return { graph, errors: [...new Set(errors)] };
}

/**
 * Text checks for one file: `Deno.build.os` only under `ffi/` (platform
 * differences live in layout data), and no reference to the shared workspace
 * outside the repository.
 *
 * @param path The file, relative to the repository root.
 * @param text Its contents.
 * @returns One message per offending line.
 */
export function checkText(path: string, text: string): string[] {
  if (path === SELF) return [];
  const problems: string[] = [];
  const checkOs = /\.[cm]?tsx?$/.test(path) && !path.startsWith("ffi/");
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (checkOs && /Deno\s*\.\s*build\s*(\.\s*os\b|\[\s*["'`]os["'`]\s*\])/.test(line)) {
      problems.push(
        `${path}:${
          i + 1
        }: Deno.build.os outside ffi/ (platform differences belong in ffi/ layout data)`,
      );
    }
    const needle = ["../shared", "shared/reference"].find((needle) => line.includes(needle));
    if (needle !== undefined) {
      problems.push(`${path}:${i + 1}: mentions "${needle}", which is outside the repository`);
    }
  }
  return problems;
}

/**
 * Runs {@linkcode checkText} over every file under `dir`, skipping `.git`,
 * `node_modules` and directories whose name starts with `.`; symlinked
 * directories are not followed.
 *
 * @param dir The repository root.
 * @param prefix The path of `dir` relative to the root (`""` at the root).
 * @returns The problems, in path order.
 */
export async function checkTree(dir: string, prefix = ""): Promise<string[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const problems: string[] = [];
  for (const entry of entries) {
    const path = `${prefix}${entry.name}`;
    const full = `${dir}/${entry.name}`;
    let isFile = entry.isFile;
    if (entry.isSymlink) isFile = (await Deno.stat(full).catch(() => undefined))?.isFile ?? false;
    if (entry.isDirectory) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      problems.push(...await checkTree(full, `${path}/`));
    } else if (isFile) {
      const text = new TextDecoder().decode(await Deno.readFile(full));
      problems.push(...checkText(path, text));
    }
  }
  return problems;
}

async function denoInfo(root: string): Promise<DenoInfo> {
  const output = await new Deno.Command(Deno.execPath(), {
    // --no-lock: a linter should not write deno.lock.
    args: ["info", "--json", "--no-lock", root],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`"deno info --json ${root}" failed with code ${output.code}: ${stderr}`);
  }
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/**
 * Runs every check from the current working directory, which must be the
 * repository root.
 *
 * @returns The exit code: 0 if everything passed, 1 if not.
 */
export async function main(): Promise<number> {
  const root = Deno.cwd();
  const rootUrl = new URL(`file://${root.endsWith("/") ? root : `${root}/`}`).href;
  let infos: DenoInfo[];
  try {
    infos = [];
    for (const entry of ROOTS) infos.push(await denoInfo(entry));
  } catch (error) {
    console.error(`lint:layers: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
  const { graph, errors } = graphFromDenoInfo(infos, rootUrl);
  const report = checkGraph(graph);
  const text = await checkTree(root);
  const problems = [
    ...errors,
    ...report.cycles.map(formatCycle),
    ...report.violations,
    ...report.unclassified,
    ...text,
  ];
  const summary = `lint:layers: ${report.modules} modules, ${report.cycles.length} cycles, ` +
    `${report.violations.length} layer violations`;
  if (problems.length === 0) {
    console.log(summary);
    return 0;
  }
  for (const problem of problems) console.error(problem);
  console.error(
    `${summary}, ${report.unclassified.length} unclassified modules, ` +
      `${text.length} text problems, ${errors.length} resolution errors`,
  );
  return 1;
}

if (import.meta.main) Deno.exit(await main());
