#!/usr/bin/env node
// stories260K widened exactly to the TinyLlama-1.1B shape, with its trained draft: see
// tools/wide-stories/make.js for the files, the flags and the construction.
//
//   node bench/make-wide-stories.js [--dtype f32|f16|bf16|q8_0[,...]] [--out DIR] [--force]
'use strict';

const { makeWide, parseArgs } = require('../tools/wide-stories/make');

const argv = process.argv.slice(2);
try {
  if (argv.includes('--help') || argv.includes('-h')) {
    parseArgs(['--help']);
  }
  makeWide(parseArgs(argv));
} catch (e) {
  const help = argv.includes('--help') || argv.includes('-h');
  process.stderr.write(`${e && e.usage ? e.message : e && e.stack ? e.stack : e}\n`);
  process.exit(help ? 0 : e && e.usage ? 2 : 1);
}
