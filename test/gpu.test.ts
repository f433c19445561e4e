// The gpu load option: 'auto' falls back to the CPU where no GPU (or no CUDA build) exists, 'cuda'
// then fails with a CudaError naming the reason, false always means the CPU. Where a GPU exists,
// the CUDA backend's greedy output equals the CPU's.
import { CudaError, InvalidArgumentError, cudaStatus, loadModel } from '../lib';
import { binding } from '../lib/binding';
import { tempDir } from './helpers';
import { writeTiny } from './tinyModel';

let file: string;
beforeAll(() => {
  file = writeTiny(tempDir(), 'gguf');
});

test('cudaStatus says whether the CUDA backend is built and usable, and why not', async () => {
  const s = await cudaStatus();
  expect(typeof s.built).toBe('boolean');
  expect(typeof s.available).toBe('boolean');
  expect(s.built).toBe(binding().hasCuda);
  if (!s.built) expect(s.available).toBe(false);
  if (!s.available) expect(s.reason.length).toBeGreaterThan(10);
  else expect(s.reason).toBe('');
});

test("gpu: false runs on the CPU; 'auto' picks CUDA only where it is usable", async () => {
  const status = await cudaStatus();
  const cpu = await loadModel(file, { threads: 2, gpu: false });
  expect(cpu.backend).toBe('cpu');
  const auto = await loadModel(file, { threads: 2, gpu: 'auto' });
  expect(auto.backend).toBe(status.available ? 'cuda' : 'cpu');
  const dflt = await loadModel(file, { threads: 2 });
  expect(dflt.backend).toBe(auto.backend);
  // Same greedy text whichever backend 'auto' chose.
  const opts = { temperature: 0, maxTokens: 24, stopOnEos: false };
  const a = await cpu.createSession().complete('hello', opts);
  const b = await auto.createSession().complete('hello', opts);
  expect(b.tokens).toEqual(a.tokens);
  cpu.dispose();
  auto.dispose();
  dflt.dispose();
});

test("gpu: 'cuda' without a usable GPU rejects with a CudaError that says why", async () => {
  const status = await cudaStatus();
  if (status.available) {
    const m = await loadModel(file, { threads: 2, gpu: 'cuda' });
    expect(m.backend).toBe('cuda');
    m.dispose();
    return;
  }
  const err = await loadModel(file, { threads: 2, gpu: 'cuda' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CudaError);
  expect((err as CudaError).code).toBe('E_CUDA');
  expect((err as Error).message).toContain(status.reason);
});

test('a bad gpu value is an InvalidArgumentError', async () => {
  await expect(loadModel(file, { gpu: 'metal' as never })).rejects.toThrow(InvalidArgumentError);
  await expect(loadModel(file, { gpu: true as never })).rejects.toThrow(/gpu must be/);
});
