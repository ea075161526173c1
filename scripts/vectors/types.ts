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
