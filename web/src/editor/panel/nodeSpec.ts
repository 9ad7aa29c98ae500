// Edits of a node's own fields (pure): name, retry, timeout, on_error.
import type { NodeSpec } from "../../canvas/definition";
import { jsonEqual } from "./config";

export type RetryPolicy = NonNullable<NodeSpec["retry"]>;

/** The server's RetryPolicy defaults (src/ductwork/models.py). */
export const RETRY_DEFAULTS: RetryPolicy = {
  max_attempts: 1,
  backoff_seconds: 1,
  backoff_factor: 2,
  max_backoff_seconds: 300,
  jitter: 0.5,
};

/** `spec` with `key` set, or removed when `value` is undefined (the default applies). */
export function withField<K extends keyof NodeSpec>(spec: NodeSpec, key: K, value: NodeSpec[K] | undefined): NodeSpec {
  const next: NodeSpec = { ...spec };
  if (value === undefined) delete next[key];
  else next[key] = value;
  return next;
}

/**
 * `spec` with one retry setting changed (undefined = its default). A policy equal to
 * the defaults is removed, so a node never tried twice carries no `retry` at all.
 */
export function withRetry(spec: NodeSpec, key: keyof RetryPolicy, value: number | undefined): NodeSpec {
  const retry: RetryPolicy = { ...RETRY_DEFAULTS, ...(spec.retry ?? {}), [key]: value ?? RETRY_DEFAULTS[key] };
  return withField(spec, "retry", jsonEqual(retry, RETRY_DEFAULTS) ? undefined : retry);
}
