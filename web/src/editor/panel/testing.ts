// Test helpers: the real `GET /node-types` answer (fixtures/node-types.json).
import type { NodeTypeInfo } from "../../canvas/definition";
import nodeTypes from "./fixtures/node-types.json";

/** One node type from the fixture, by name (throws for an unknown one: a test bug). */
export function fixtureType(type: string): NodeTypeInfo {
  const found = (nodeTypes as NodeTypeInfo[]).find((entry) => entry.type === type);
  if (!found) throw new Error(`no node type ${type} in the fixture`);
  return found;
}
