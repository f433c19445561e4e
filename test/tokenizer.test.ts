// Tokenizer round trips through the JS API (non-ASCII, byte fallback, the leading-space rule), on
// the tiny model's vocabulary and on stories260K's.
import { loadModel, Model } from '../lib';
import { describeStories, golden, storiesGguf, tempDir } from './helpers';
import { writeTiny } from './tinyModel';

const texts = [
  'hello world',
  ' leading space',
  'naïve café, Ünïcödé ✓ 日本語 😀',
  'tabs\tand\nnewlines\r\n',
  '\u0000\u0001 control bytes \u007f',
  'a'.repeat(500),
  '',
];

function roundTrips(model: Model) {
  for (const text of texts) {
    const ids = model.tokenize(text, { addBos: false });
    expect({ text, back: model.detokenize(ids) }).toEqual({ text, back: text });
  }
}

describe('tiny model vocabulary', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(writeTiny(tempDir(), 'gguf'), { threads: 1 });
  });
  afterAll(() => model.dispose());

  test('round trips, including characters only byte fallback can encode', () => roundTrips(model));

  test('BOS is added by default and decodes to nothing', () => {
    const ids = model.tokenize('hi');
    expect(ids[0]).toBe(model.info.tokenizer.bos);
    expect(model.detokenize(ids)).toBe('hi');
  });

  test('an incomplete character at the end decodes to U+FFFD, never to broken UTF-8', () => {
    const ids = model.tokenize('😀', { addBos: false });
    expect(ids.length).toBeGreaterThan(1); // byte fallback: one token per byte
    expect(model.detokenize(ids.slice(0, -1))).toMatch(/\uFFFD$/);
  });
});

describeStories('stories260K vocabulary', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(storiesGguf, { threads: 1 });
  });
  afterAll(() => model.dispose());

  test('golden prompts encode to the golden ids', () => {
    for (const c of golden().cases) expect(model.tokenize(c.prompt)).toEqual(c.prompt_ids);
  });

  test('round trips', () => roundTrips(model));
});
