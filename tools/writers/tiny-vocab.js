// The vocabulary of the tiny test models: a SentencePiece-style BPE vocabulary learned from a small
// built-in text. ids 0..2 <unk> <s> </s>; 3..258 the byte-fallback pieces <0x00>..<0xFF>; then " " and
// single characters; then merged pieces in the order BPE learned them (" the", " a", ...), padded with
// systematic merges when the text runs out. Scores are SentencePiece-like (earlier merge = higher score),
// and `merges` lists every (left, right) split of each merged piece in score order, as HF's conversion of
// a SentencePiece model does, so score-driven and rank-driven BPE encode alike.
'use strict';

const TEXT = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
One day, she saw a big red ball under a tree. She ran to the ball and picked it up. The ball was soft and round.
Lily wanted to share the ball with her friend Tom. Tom was sad because he lost his toy. Lily gave him the ball
and Tom smiled. They played with the ball all day, and the sun was warm and happy. The end.`;

const BASE = ' etaoinshrdlucmfwypvbgkTOLS.,!\'jqxzACDEFGHIJKMNPQRUVWXYZ0123456789';
const TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 };

// Greedy BPE training over " word" units (SentencePiece's leading-space convention).
function learnMerges(budget, inVocab, add) {
  const counts = new Map();
  for (const w of TEXT.split(/\s+/).filter(Boolean)) counts.set(' ' + w, (counts.get(' ' + w) || 0) + 1);
  const words = [...counts].map(([w, n]) => ({ syms: [...w], n }));
  const learned = [];
  while (learned.length < budget) {
    const pairs = new Map();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        if (!inVocab(syms[i]) || !inVocab(syms[i + 1])) continue;
        const key = syms[i] + '\u0000' + syms[i + 1];
        pairs.set(key, (pairs.get(key) || 0) + n);
      }
    }
    let best = null;
    for (const [k, n] of pairs) if (!best || n > best[1] || (n === best[1] && k < best[0])) best = [k, n];
    if (!best) break;
    const [l, r] = best[0].split('\u0000');
    for (const wd of words) {
      const out = [];
      for (let i = 0; i < wd.syms.length; i++) {
        if (i + 1 < wd.syms.length && wd.syms[i] === l && wd.syms[i + 1] === r) { out.push(l + r); i++; } else out.push(wd.syms[i]);
      }
      wd.syms = out;
    }
    learned.push(l + r);
    add(l + r);
  }
  return learned;
}

function buildVocab(V) {
  if (V < 260) throw new Error(`the tiny vocabulary needs V >= 260 (3 specials, 256 bytes, " "), got ${V}`);
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const firstText = pieces.length;
  for (const c of BASE.slice(0, Math.min(BASE.length, Math.max(1, Math.floor((V - firstText) / 3))))) pieces.push(c);
  const ids = new Map(pieces.map((p, i) => [p, i]));
  const add = (p) => { if (!ids.has(p) && pieces.length < V) { ids.set(p, pieces.length); pieces.push(p); } };
  const textPiece = (p) => ids.has(p) && ids.get(p) >= firstText;
  learnMerges(V - pieces.length, textPiece, add);
  // Pad with merges of existing pieces and common letters, in a fixed order.
  for (let i = firstText; pieces.length < V && i < pieces.length; i++) {
    for (const c of 'etaoinshrd') add(pieces[i] + c);
  }
  if (pieces.length < V) throw new Error(`could not build ${V} pieces`);
  const types = pieces.map((p, i) => (i === 0 ? TYPE.UNKNOWN : i < 3 ? TYPE.CONTROL : i < firstText ? TYPE.BYTE : TYPE.NORMAL));
  const scores = pieces.map((p, i) => (i < firstText ? 0 : -(i - firstText)));
  const merges = [];
  for (let i = firstText; i < V; i++) {
    const p = pieces[i];
    const cps = [...p];
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join('');
      const r = cps.slice(k).join('');
      if (textPiece(l) && textPiece(r)) merges.push([l, r]);
    }
  }
  return { pieces, scores, types, merges, bos: 1, eos: 2, unk: 0 };
}

module.exports = { buildVocab };
