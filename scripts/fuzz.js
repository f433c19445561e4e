#!/usr/bin/env node
// Builds the libFuzzer harnesses (fuzz/CMakeLists.txt -> build-fuzz/, clang), writes their seeds
// (fuzz/make-seeds.js -> fuzz/corpus/<name>/) and runs each one for a fixed time. Memory blow-ups and
// hangs count as findings (-rss_limit_mb / -malloc_limit_mb 2048, -timeout 10 s per input).
//
//   npm run fuzz -- --seconds N [--only gguf,json,...] [--jobs J] [--no-build] [--no-seeds]
//
// --jobs J runs J harnesses at a time (each one libFuzzer process). New corpus entries go to
// build-fuzz/corpus/<name>/ (the seeds stay as written), crash/oom/timeout/leak reproducers to
// build-fuzz/artifacts/<name>/, each harness's log to build-fuzz/logs/<name>.log. Prints one JSON line
// per harness on stdout: {harness, seconds, executions, exec_per_s, corpus, crashes, ok} (plus
// artifacts when it found something); build and seed output goes to stderr. Exits 1 when any harness
// found something (or failed to run), 2 on a usage or build error.
// Reproduce a finding: build-fuzz/fuzz_<name> build-fuzz/artifacts/<name>/crash-...
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const buildDir = path.join(root, 'build-fuzz');
const { HARNESSES } = require(path.join(root, 'fuzz', 'make-seeds.js'));
// libFuzzer dictionaries (fuzz/dicts/*.dict) by harness.
const DICTS = { json: 'json', hf_tokenizer: 'json', hf_config: 'json', safetensors: 'json', draft: 'json', gguf: 'gguf' };
const FINDING = /^(crash|oom|timeout|leak)-/;

function usage(msg) {
  if (msg) process.stderr.write(`fuzz: ${msg}\n`);
  process.stderr.write('usage: npm run fuzz -- --seconds N [--only a,b] [--jobs J] [--no-build] [--no-seeds]\n' +
    `harnesses: ${HARNESSES.join(', ')}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { seconds: 60, only: HARNESSES, jobs: 1, build: true, seeds: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--seconds') o.seconds = Number(value());
    else if (a === '--only') o.only = value().split(',').filter(Boolean);
    else if (a === '--jobs') o.jobs = Number(value());
    else if (a === '--no-build') o.build = false;
    else if (a === '--no-seeds') o.seeds = false;
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!(Number.isInteger(o.seconds) && o.seconds > 0)) usage('--seconds must be a positive integer');
  if (!(Number.isInteger(o.jobs) && o.jobs > 0)) usage('--jobs must be a positive integer');
  for (const n of o.only) if (!HARNESSES.includes(n)) usage(`unknown harness ${n}`);
  return o;
}

function run(cmd, args) {
  process.stderr.write(`$ ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.error || r.status !== 0) {
    process.stderr.write(`fuzz: ${cmd} failed${r.error ? `: ${r.error.message}` : ` (exit ${r.status})`}\n`);
    process.exit(2);
  }
}

function build() {
  const clang = spawnSync('clang++', ['--version'], { stdio: 'ignore' });
  if (clang.error || clang.status !== 0) {
    process.stderr.write('fuzz: clang++ not found; install it (Debian: apt-get install -y clang, which ships libFuzzer)\n');
    process.exit(2);
  }
  if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
    run('cmake', ['-S', 'fuzz', '-B', 'build-fuzz', '-DCMAKE_CXX_COMPILER=clang++', '-DCMAKE_BUILD_TYPE=RelWithDebInfo']);
  }
  run('cmake', ['--build', 'build-fuzz', '-j', '2']);
}

const listFindings = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => FINDING.test(f)) : []);

function lastMatch(text, re) {
  let m;
  let last = null;
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
  while ((m = g.exec(text)) !== null) last = m;
  return last;
}

// Executions from libFuzzer's final stats, else its "Done N runs" line, else the last "#N" status line.
function parseLog(log) {
  const stat = lastMatch(log, /stat::number_of_executed_units:\s*(\d+)/);
  const done = lastMatch(log, /Done (\d+) runs in/);
  const status = lastMatch(log, /^#(\d+)\s/m);
  const executions = Number((stat || done || status || [0, 0])[1]);
  const corp = lastMatch(log, /\bcorp: (\d+)\//);
  return { executions, corpus: corp ? Number(corp[1]) : null };
}

function fuzzOne(name, o, scratchRoot) {
  const exe = path.join(buildDir, `fuzz_${name}`);
  const work = path.join(buildDir, 'corpus', name);
  const seeds = path.join(root, 'fuzz', 'corpus', name);
  const artifacts = path.join(buildDir, 'artifacts', name);
  const logFile = path.join(buildDir, 'logs', `${name}.log`);
  for (const d of [work, seeds, artifacts, path.dirname(logFile)]) fs.mkdirSync(d, { recursive: true });
  const before = new Set(listFindings(artifacts));
  const args = [work, seeds, `-max_total_time=${o.seconds}`, '-rss_limit_mb=2048', '-malloc_limit_mb=2048',
    '-timeout=10', `-artifact_prefix=${artifacts}${path.sep}`, '-print_final_stats=1'];
  const dict = DICTS[name] && path.join(root, 'fuzz', 'dicts', `${DICTS[name]}.dict`);
  if (dict && fs.existsSync(dict)) args.push(`-dict=${dict}`);
  const env = { ...process.env, CHIMERA_FUZZ_TMP: scratchRoot,
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1' };
  const start = Date.now();
  return new Promise((resolve) => {
    const log = fs.openSync(logFile, 'w');
    const child = spawn(exe, args, { cwd: root, env, stdio: ['ignore', log, log] });
    // libFuzzer stops itself; this guard only catches a harness stuck outside an input (startup, merge).
    const guard = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 120) * 1000);
    const finish = (code, signal, error) => {
      clearTimeout(guard);
      fs.closeSync(log);
      const seconds = (Date.now() - start) / 1000;
      const text = fs.readFileSync(logFile, 'utf8');
      const { executions, corpus } = parseLog(text);
      const fresh = listFindings(artifacts).filter((f) => !before.has(f));
      const ok = !error && code === 0 && fresh.length === 0;
      const line = { harness: name, seconds: Math.round(seconds * 10) / 10, executions,
        exec_per_s: seconds > 0 ? Math.round(executions / seconds) : 0, corpus, crashes: fresh.length, ok };
      if (fresh.length) line.artifacts = fresh.map((f) => path.relative(root, path.join(artifacts, f)));
      if (!ok) {
        const why = error ? error.message : signal ? `killed by ${signal}` : `exit ${code}`;
        process.stderr.write(`\nfuzz: ${name} found something or failed (${why}); log ${path.relative(root, logFile)}:\n` +
          text.split('\n').slice(-60).join('\n') + '\n');
      }
      resolve(line);
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('exit', (code, signal) => finish(code, signal, null));
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.build) build();
  if (o.seeds) run(process.execPath, [path.join('fuzz', 'make-seeds.js'), '--only', o.only.join(',')]);
  const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const scratchRoot = fs.mkdtempSync(path.join(shm, 'chimera-fuzz-run-'));
  const results = [];
  try {
    const queue = [...o.only];
    const worker = async () => {
      while (queue.length) {
        const line = await fuzzOne(queue.shift(), o, scratchRoot);
        process.stdout.write(JSON.stringify(line) + '\n');
        results.push(line);
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.jobs, o.only.length) }, worker));
  } finally {
    fs.rmSync(scratchRoot, { recursive: true, force: true });
  }
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${e.stack || e}\n`);
  process.exit(2);
});
