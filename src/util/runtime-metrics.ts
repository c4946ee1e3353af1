/**
 * Node.js process and runtime metrics (prom-client's default set) on a registry, for the hub's and
 * the service proxy's metrics endpoints.
 */
import { type Registry, collectDefaultMetrics } from 'prom-client';

/**
 * How often the event-loop delay monitor samples, ms. prom-client's default (10 ms) wakes an idle
 * process 100 times a second (a hub with no streams: 102 wake-ups/s, 100 of them this timer); at
 * 100 ms the lag percentiles stay meaningful for an operator and an idle process stays asleep.
 */
export const EVENT_LOOP_MONITOR_MS = 100;

/** Registers the process and runtime metrics on `registry`. */
export function collectRuntimeMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_MS });
}
