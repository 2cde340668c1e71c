// MIRRORED PAIR section of scripts/bench.mjs: start a two-node pair with
// `twinsan node` and return the URL of a mirrored volume. Filled in once
// `twinsan node` has landed (its config format is docs/node-config.md);
// until then it reports why it skipped.

/** @returns {Promise<{ url: string, stop(): Promise<void> } | { skipped: string }>} */
export async function startMirrorBench(_options) {
  return { skipped: 'no pair starter for benchmarks yet (scripts/lib/bench-mirror.mjs)' };
}
