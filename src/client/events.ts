/** A tiny typed event emitter (isomorphic: no node:events in code the browser loads). */
export class Emitter<Events extends { [K in keyof Events]: (...args: never[]) => void }> {
  private readonly handlers = new Map<keyof Events, Set<Events[keyof Events]>>();

  on<K extends keyof Events>(event: K, handler: Events[K]): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const h of this.handlers.get(event) ?? []) {
      try {
        (h as (...a: Parameters<Events[K]>) => void)(...args);
      } catch {
        // a UI handler's failure must not break delivery
      }
    }
  }
}
