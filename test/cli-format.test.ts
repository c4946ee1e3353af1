import { describe, expect, it } from 'vitest';
import { connectionSummary, formatBytes } from '../src/cli/common.js';

describe('the closing line of a connection', () => {
  it('prints byte counts in decimal units a person reads at a glance', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1000)).toBe('1.00 kB');
    expect(formatBytes(50_000)).toBe('50.0 kB');
    expect(formatBytes(123_456_789)).toBe('123 MB');
    expect(formatBytes(2_000_000_000)).toBe('2.00 GB');
    expect(formatBytes(5e15)).toBe('5000 TB');
  });

  it('says how long the connection lasted, in ms below a second and s above', () => {
    expect(connectionSummary({ durationMs: 12.4, bytesIn: 64, bytesOut: 1_500 })).toBe('after 12 ms, 64 B in, 1.50 kB out');
    expect(connectionSummary({ durationMs: 61_234, bytesIn: 0, bytesOut: 0 })).toBe('after 61.2 s, 0 B in, 0 B out');
  });
});
