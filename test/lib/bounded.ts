// Bounds for tests: a failing test must report, never hang the run.
import { test as nodeTest, type TestContext } from 'node:test';

/** Default per-test timeout: far above any test's normal time on a loaded 2-core machine. */
export const DEFAULT_TEST_TIMEOUT_MS = 300_000;

type TestFn = (t: TestContext) => void | Promise<void>;
interface TestOptions {
  timeout?: number;
  skip?: boolean | string;
  only?: boolean;
  todo?: boolean | string;
  concurrency?: number | boolean;
}

/** node:test's test() with a timeout unless the test states its own. */
export function test(name: string, fn: TestFn): Promise<void>;
export function test(name: string, options: TestOptions, fn: TestFn): Promise<void>;
export function test(name: string, a: TestOptions | TestFn, b?: TestFn): Promise<void> {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  return nodeTest(name, { timeout: DEFAULT_TEST_TIMEOUT_MS, ...options }, fn);
}

/**
 * Await `p`, or fail after `ms` with a message naming `what`. The timer keeps the event loop alive (an
 * Atomics.waitAsync timeout does not, so a test awaiting only that would end as "still pending" instead of failing).
 */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
