/**
 * The peer's recent ACK steps (bytes one ACK covered): how often it acknowledges, which the
 * sender's in-flight bound must stay a few of above, or every step waits for the peer's ACK timer.
 * Shared by the round-trip rule (in-flight.ts) and the delay controller.
 */

/** Recent ACK steps the largest is taken of. */
export const ACK_STEP_HISTORY = 16;

/** The largest of the last ACK_STEP_HISTORY steps. */
export class AckSteps {
  private readonly steps: number[] = [];
  private max = 0;

  /** One ACK that covered `bytes` (> 0). */
  add(bytes: number): void {
    this.steps.push(bytes);
    if (this.steps.length > ACK_STEP_HISTORY) this.steps.shift();
    this.max = Math.max(...this.steps);
  }

  /** The largest recent step, bytes; 0 before the first ACK. */
  get largest(): number {
    return this.max;
  }

  clear(): void {
    this.steps.length = 0;
    this.max = 0;
  }
}
