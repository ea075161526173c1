/** Small hooks: re-render when the engine reports a change, and load async data on each change. */
import { useEffect, useState } from 'preact/hooks';
import type { Engine } from '../engine.js';

export function useEngineVersion(engine: Engine): number {
  const [v, setV] = useState(0);
  useEffect(() => engine.subscribe(() => setV((x) => x + 1)), [engine]);
  return v;
}

/** `load()` again whenever the engine changes or `deps` do; keeps the last value while reloading. */
export function useLoaded<T>(engine: Engine, load: () => Promise<T>, deps: unknown[]): T | undefined {
  const version = useEngineVersion(engine);
  const [value, setValue] = useState<T | undefined>(undefined);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => live && setValue(v),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [version, ...deps]);
  return value;
}
