/** Serialises async sections: every protocol state change goes through one load-change-store at a time. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(f: () => Promise<T>): Promise<T> {
    const result = this.tail.then(f);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
