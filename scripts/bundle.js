#!/usr/bin/env node
'use strict';
/**
 * The one-file build of the CLI (part of `npm run build`, after tsc): cli/dist/amber.js from the
 * compiled cli/dist/bundle.js (tsc's output, so tsyringe's decorator metadata is there), with
 * oclif, @amber/core, the built-in plugins and their dependencies in it. koffi (a native addon)
 * and typescript (oclif names it for ts-node projects only) stay outside.
 *
 * Modules of amber's own packages find their files from __dirname (.proto schemas, mm's worker).
 * In the bundle each gets the __dirname it would have in a checkout, under cli/dist/pkgs/
 * (core/dist/images -> cli/dist/pkgs/core/dist/images), and the files they look for are copied
 * there: every package's proto/ and mm's populate worker (bundled on its own).
 */
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const REPO = path.resolve(__dirname, '..');
const CLI_DIST = path.join(REPO, 'cli', 'dist');
const PKGS = path.join(CLI_DIST, 'pkgs');
const WORKSPACES = ['core', 'plugins/mm', 'plugins/fs', 'plugins/unix', 'plugins/net-tcp', 'plugins/tty', 'plugins/ipc'];
const EXTERNAL = ['koffi', 'typescript'];

/** Gives each module of a workspace package (not the CLI's) its checkout __dirname under pkgs/. */
const packageDirnames = {
  name: 'amber-package-dirnames',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      const rel = path.relative(REPO, args.path);
      const ws = WORKSPACES.find((w) => rel.startsWith(`${w}/dist/`));
      if (!ws) return undefined;
      let contents = await fs.promises.readFile(args.path, 'utf8');
      if (/\b__dirname\b/.test(contents)) {
        const dir = JSON.stringify(path.relative(CLI_DIST, path.join(PKGS, path.dirname(rel))));
        contents = `var __dirname = require("node:path").join(__amber_bundle_dir, ${dir});\n${contents}`;
      }
      return { contents, loader: 'js' };
    });
  },
};

/*
 * oclif sorts the commands by id with String#localeCompare on every start. The first
 * localeCompare of a process brings in ICU's collation: ~2.5 MB more of node's binary resident,
 * for a command that sorts a dozen ASCII ids (where code-unit order is the same order).
 */
const OCLIF_SORT = 'a.id.localeCompare(b.id)';
const oclifSort = {
  name: 'amber-oclif-sort',
  setup(build) {
    build.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, async (args) => {
      const contents = await fs.promises.readFile(args.path, 'utf8');
      if (!contents.includes(OCLIF_SORT)) throw new Error(`${args.path}: no "${OCLIF_SORT}" to replace (oclif changed): see oclifSort`);
      return { contents: contents.replace(OCLIF_SORT, '(a.id < b.id ? -1 : a.id > b.id ? 1 : 0)'), loader: 'js' };
    });
  },
};

/*
 * Builtins oclif loads at start for rare paths: node:readline (a flag value read from stdin) and
 * node:child_process (the shell's name on Windows; and wsl-utils, which getPlatform() imports only
 * for its isWsl, starts with promisify(execFile)). They cost every start ~2 ms each (node with
 * run.js's flags). oclif calls them as `(0, mod_1.fn)(...)`, so an object that requires the
 * module on first property access serves the same calls; isWsl is wsl-utils' re-export of is-wsl's
 * default, imported from is-wsl itself.
 */
const LAZY_BUILTIN = (builtin) => [`require("${builtin}")`, `new Proxy({}, { get: (_, key) => require("${builtin}")[key] })`];
/*
 * node:fs/promises costs a start ~5 ms (it brings readline's interface, fs watchers, streams ...);
 * oclif's fs helpers call only stat and readFile of it while they read the package.json files,
 * which node:fs's own functions do as well, promisified.
 */
const FS_PROMISES_BY_CALLBACKS = [
  'require("node:fs/promises")',
  '(() => { const fs = require("node:fs"); const { promisify } = require("node:util"); return { stat: promisify(fs.stat), readFile: promisify(fs.readFile) }; })()',
];
const oclifLazyBuiltins = {
  name: 'amber-oclif-lazy-builtins',
  setup(build) {
    const patch = (filter, replacements) =>
      build.onLoad({ filter }, async (args) => {
        let contents = await fs.promises.readFile(args.path, 'utf8');
        for (const [from, to] of await replacements(args.path)) {
          if (contents.split(from).length !== 2) throw new Error(`${args.path}: not one ${from} to replace (oclif changed): see oclifLazyBuiltins`);
          contents = contents.replace(from, to);
        }
        return { contents, loader: 'js' };
      });
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]parser[\\/]parse\.js$/, async () => [LAZY_BUILTIN('node:readline')]);
    // oclif's performance markers: perf_hooks (~11 builtins) only once OCLIF_PERFORMANCE asks for them
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]performance\.js$/, async () => [LAZY_BUILTIN('node:perf_hooks')]);
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]util[\\/]fs\.js$/, async () => [FS_PROMISES_BY_CALLBACKS]);
    // TypeScript sources of a plugin in development, which amber never runs (enableAutoTranspile off)
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]ts-path\.js$/, async () => [LAZY_BUILTIN('node:fs/promises')]);
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]util[\\/]read-tsconfig\.js$/, async () => [LAZY_BUILTIN('node:fs/promises')]);
    // lilconfig (oclif's search for a config file) takes fs.promises.readFile when it loads
    patch(/[\\/]lilconfig[\\/]src[\\/]index\.js$/, async () => [['fs.promises.readFile;', '(...args) => fs.promises.readFile(...args);']]);
    // oclif's logger: the debug package (with supports-color, ms, tty) only when DEBUG asks for
    // its lines; otherwise loggers that print nothing, as debug's do then
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]logger\.js$/, async () => [
      ['require("debug")', '(process.env.DEBUG ? require("debug") : (ns) => Object.assign(() => {}, { enabled: false, namespace: ns }))'],
    ]);
    patch(/[\\/]@oclif[\\/]core[\\/]lib[\\/]util[\\/]os\.js$/, async (file) => {
      const wslUtils = await build.resolve('wsl-utils', { resolveDir: path.dirname(file), kind: 'dynamic-import' });
      const isWsl = await build.resolve('is-wsl', { resolveDir: path.dirname(wslUtils.path), kind: 'import-statement' });
      if (wslUtils.errors.length || isWsl.errors.length) throw new Error(`${file}: wsl-utils or its is-wsl not found: see oclifLazyBuiltins`);
      return [LAZY_BUILTIN('node:child_process'), ["(await import('wsl-utils')).isWsl ?", `(await import(${JSON.stringify(isWsl.path)})).default ?`]];
    });
  },
};

function copyProtos() {
  fs.rmSync(PKGS, { recursive: true, force: true });
  for (const ws of WORKSPACES) {
    const from = path.join(REPO, ws, 'proto');
    if (!fs.existsSync(from)) continue;
    const to = path.join(PKGS, ws, 'proto');
    fs.mkdirSync(to, { recursive: true });
    for (const f of fs.readdirSync(from)) if (f.endsWith('.proto') || f.endsWith('.proto.json')) fs.copyFileSync(path.join(from, f), path.join(to, f));
  }
}

async function main() {
  copyProtos();
  const common = {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: EXTERNAL,
    plugins: [packageDirnames, oclifSort, oclifLazyBuiltins],
    banner: { js: 'var __amber_bundle_dir = __dirname;' },
    logLevel: 'warning',
    // esbuild reports `require.resolve` of a name it cannot see at build time; that is on purpose
    logOverride: { 'require-resolve-not-external': 'silent', 'indirect-require': 'silent' },
    legalComments: 'none',
  };
  await esbuild.build({ ...common, entryPoints: [path.join(CLI_DIST, 'bundle.js')], outfile: path.join(CLI_DIST, 'amber.js') });
}

main().catch((e) => {
  console.error(`bundle: ${e.message}`);
  process.exit(1);
});
