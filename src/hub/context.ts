/**
 * The facts every hub route works from, wired once by server.ts. The route contexts
 * (stream requests, registry API, the router) pick what they use from this one shape, so the
 * registry, host name, clock skew and logger are each passed once.
 */
import type { HubConfig } from './config.js';
import type { ControlPlane } from './control.js';
import type { HubLogger } from './log.js';
import type { HubMetrics } from './metrics.js';
import type { PresenceStore, StreamRouter } from './presence.js';
import type { RegistryStore } from './registry-store.js';

/** What a hub node shares with all of its routes. */
export interface HubContext {
  /** Resolved limits and timeouts (the clock skew and body size among them). */
  readonly config: HubConfig;
  readonly registry: RegistryStore;
  /** Which node holds each device's control socket (the whole fleet's view). */
  readonly presence: PresenceStore;
  /** Stream tickets, from issue to claim. */
  readonly router: StreamRouter;
  readonly control: ControlPlane;
  readonly metrics: HubMetrics;
  readonly log: HubLogger;
  /** The host name credentials are scoped to. */
  hostName(): string;
}
