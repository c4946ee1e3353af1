// Registry of path scenarios, in run and report order.
import { bulkMulti, bulkMultiNode, bulkOne, bulkOneNode } from './bulk.js';
import { httpLoad } from './http.js';
import { interactiveFixedLoad, interactiveUnderBulk, rtt64, ttfb } from './latency.js';
import type { Scenario } from './types.js';

export const SCENARIOS: Scenario[] = [
  bulkOne,
  bulkMulti,
  bulkOneNode,
  bulkMultiNode,
  rtt64,
  interactiveUnderBulk,
  interactiveFixedLoad,
  ttfb,
  httpLoad,
];

export type { Scenario, ScenarioContext, ScenarioOutcome, Metrics } from './types.js';
