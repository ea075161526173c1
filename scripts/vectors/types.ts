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
}

export type TopicRunner = (file: VectorFile) => Promise<CaseResult[]>;
