/** Retry timing: exponential backoff with full jitter, capped. */
export const RETRY_BASE_MS = 500;
export const RETRY_CAP_MS = 60_000;

export function retryDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(attempt, 20));
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}
