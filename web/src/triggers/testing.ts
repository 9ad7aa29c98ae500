// Test helpers: the real `GET /trigger-types` answer (fixtures/trigger-types.json, written
// from `ductwork.triggers.spec.trigger_schemas()`).
import triggerTypes from "./fixtures/trigger-types.json";
import type { TriggerTypeInfo } from "./schema";

export const TRIGGER_TYPE_FIXTURE = triggerTypes as TriggerTypeInfo[];

/** One trigger type from the fixture, by name (throws for an unknown one: a test bug). */
export function fixtureTriggerType(type: string): TriggerTypeInfo {
  const found = TRIGGER_TYPE_FIXTURE.find((entry) => entry.type === type);
  if (!found) throw new Error(`no trigger type ${type} in the fixture`);
  return found;
}
