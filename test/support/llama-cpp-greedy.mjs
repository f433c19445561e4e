// Greedy continuations by llama.cpp (node-llama-cpp, the outside reference), run in their own process
// because node-llama-cpp is an ES module and jest runs CommonJS, and one process for many models
// because starting llama.cpp takes seconds:
//   node test/support/llama-cpp-greedy.mjs '{"models":["a.gguf",...],"prompt":[1,2,3],"steps":64}'
// prints one JSON line {"models":{"a.gguf":{"tokens":[...],"probs":[[...V],...]}}}: the `steps` greedily
// generated tokens of each model and, for each, the probabilities over the vocabulary it was chosen from.
import { getLlama } from 'node-llama-cpp';

const { models, prompt, steps } = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, logLevel: 'error' });
const result = {};
for (const modelPath of models) {
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: Math.max(64, prompt.length + steps + 8), batchSize: 512,
    threads: { ideal: 2, min: 1 } });
  const tokens = [], probs = [];
  const gen = context.getSequence().evaluateWithMetadata(prompt, { probabilities: true }, { temperature: 0, yieldEogToken: true });
  for await (const out of gen) {
    tokens.push(out.token);
    const p = [];
    for (const [id, prob] of out.probabilities) p[id] = prob;
    probs.push(Array.from(p, (x) => (x ? Number(x.toPrecision(6)) : 0)));
    if (tokens.length >= steps) break;
  }
  result[modelPath] = { tokens, probs };
  await context.dispose();
  await model.dispose();
}
await llama.dispose();
process.stdout.write(JSON.stringify({ models: result }) + '\n');
