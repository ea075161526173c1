/** Shape shared by the per-topic vector runners (scripts/vectors/<topic>.ts). */
export interface VectorFile {
  topic: string;
  spec_version: number;
  description: string;
  cases: Record<string, unknown>[];
}

export interface CaseResult {
  name: string;
  ok: boolean;
  /** Why a case failed; never key material. */
  detail?: string;
  /** A disagreement between SPEC.md and the vector that does not change what the case tests: reported, not hidden. */
  note?: string;
}

export type TopicRunner = (file: VectorFile) => Promise<CaseResult[]>;

/** Runs `runCase` on every case in order; a case that throws fails with the reason, the rest still run. */
export async function runEachCase<C extends { name: string }>(file: VectorFile, runCase: (c: C) => Promise<CaseResult>): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of file.cases as unknown as C[]) {
    try {
      out.push(await runCase(c));
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      out.push({ name: c.name, ok: false, detail: `threw ${(e as Error).name}${typeof code === 'string' ? ` (${code})` : ''}: ${(e as Error).message}` });
    }
  }
  return out;
}
