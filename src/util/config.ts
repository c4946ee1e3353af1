/**
 * The one configuration rule of every layer: a field left out or given as `undefined` takes its
 * default. Callers can then pass an optional value straight through (`{ crypto: o.crypto }`)
 * instead of spreading it in only when it is set.
 */

/** Overrides of `T`'s fields, each of which may be absent or undefined (meaning: the default). */
export type Overrides<T> = { [K in keyof T]?: T[K] | undefined };

/** `defaults` with every field of `overrides` that is not undefined. */
export function withDefaults<T extends object>(defaults: Readonly<T>, overrides: Overrides<T> = {}): T {
  const out = { ...defaults } as T;
  for (const key of Object.keys(overrides) as Array<keyof T>) {
    const value = overrides[key];
    if (value !== undefined) out[key] = value as T[keyof T];
  }
  return out;
}
