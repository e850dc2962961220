// Fake workers for the pool tests (tests/runtimes.test.ts, tests/threads.test.ts): they speak the
// pool's protocol (src/wasm/workers.ts) without a thread or a kernel, to script starts and failures.
import type { WorkerFactory, WorkerReply } from '../../src/wasm/workers.js';

/** What a fake worker does with each job message: answer it (`reply`) or die (`fail`). */
export type FakeJobHandler = (reply: (message: WorkerReply) => void, fail: (error: Error) => void) => void;

/**
 * A factory of workers that start at once (they answer 'init' with 'ready') and hand each job to
 * `onJob`, a millisecond later (as a real worker answers asynchronously). `onCreate` counts them.
 */
export function fakeWorkerFactory(onJob: FakeJobHandler, onCreate: () => void = () => {}): WorkerFactory {
  return () => {
    onCreate();
    let onMessage: (m: WorkerReply) => void = () => {};
    let onFailure: (e: Error) => void = () => {};
    return {
      postMessage(message: unknown) {
        if ((message as { type: string }).type === 'init') setTimeout(() => onMessage({ type: 'ready' }), 1);
        else setTimeout(() => onJob(onMessage, onFailure), 1);
      },
      listen(m, f) {
        onMessage = m;
        onFailure = f;
      },
      ref() {},
      unref() {},
      terminate() {},
    };
  };
}

/** Workers that start, then die ('worker crashed') on their first job. */
export function dyingWorkerFactory(onCreate?: () => void): WorkerFactory {
  return fakeWorkerFactory((_reply, fail) => fail(new Error('worker crashed')), onCreate);
}
