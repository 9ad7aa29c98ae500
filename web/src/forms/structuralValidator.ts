// The validator the settings forms (rjsf) run with: it never compiles code.
//
// @rjsf/validator-ajv8 (still installed: @rjsf/core imports it) compiles every schema with `new Function`, which the app's
// Content-Security-Policy (`script-src 'self'`, no 'unsafe-eval': src/ductwork/api/ui.py)
// forbids. The forms show the server's validation only (see NodeConfigPanel.tsx), so
// rjsf needs a validator for one job: telling which option of an `anyOf`/`oneOf` a
// value matches (an AI node's `stop` is a string or a list; `response_format` one of
// three shapes). A structural check of types, constants, enums, required and known
// properties answers that without evaluating anything.
import type {
  RJSFSchema,
  RJSFValidationError,
  ValidationData,
  ValidatorType,
} from "@rjsf/utils";

type Schema = RJSFSchema;
type Json = Record<string, unknown>;

const MAX_REF_DEPTH = 32;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The schema a local `$ref` (`#/$defs/X`, `#/definitions/X`) points to, or undefined. */
function resolveRef(ref: string, root: Schema): Schema | undefined {
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (!isObject(node)) return undefined;
    node = node[key];
  }
  return isObject(node) ? (node as Schema) : undefined;
}

function typeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "array":
      return Array.isArray(value);
    case "object":
      return isObject(value);
    default:
      return true;
  }
}

function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether `value` fits `schema` structurally (formats, patterns and bounds not checked). */
export function matches(schema: unknown, value: unknown, root: Schema, depth = 0): boolean {
  if (schema === true || schema === undefined) return true;
  if (schema === false) return false;
  if (!isObject(schema) || depth > MAX_REF_DEPTH) return true;
  const s = schema as Schema;
  if (typeof s.$ref === "string") {
    const target = resolveRef(s.$ref, root);
    if (target !== undefined && !matches(target, value, root, depth + 1)) return false;
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => typeMatches(String(t), value))) return false;
  }
  if (s.const !== undefined && !jsonEqual(s.const, value)) return false;
  if (Array.isArray(s.enum) && !s.enum.some((option) => jsonEqual(option, value))) return false;
  if (Array.isArray(s.allOf) && !s.allOf.every((sub) => matches(sub, value, root, depth + 1))) {
    return false;
  }
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = s[key];
    if (Array.isArray(options) && !options.some((sub) => matches(sub, value, root, depth + 1))) {
      return false;
    }
  }
  if (isObject(value)) {
    if (Array.isArray(s.required) && !s.required.every((name) => name in value)) return false;
    const properties = isObject(s.properties) ? s.properties : {};
    for (const [name, item] of Object.entries(value)) {
      if (name in properties) {
        if (!matches(properties[name], item, root, depth + 1)) return false;
      } else if (s.additionalProperties === false) {
        return false;
      } else if (isObject(s.additionalProperties)) {
        if (!matches(s.additionalProperties, item, root, depth + 1)) return false;
      }
    }
  }
  if (Array.isArray(value) && s.items !== undefined && !Array.isArray(s.items)) {
    if (!value.every((item) => matches(s.items, item, root, depth + 1))) return false;
  }
  return true;
}

/** An rjsf validator that matches structurally and reports no errors of its own. */
export const structuralValidator: ValidatorType<unknown, Schema> = {
  validateFormData(): ValidationData<unknown> {
    return { errors: [] as RJSFValidationError[], errorSchema: {} };
  },
  isValid(schema: Schema, formData: unknown, rootSchema: Schema): boolean {
    return matches(schema, formData, rootSchema);
  },
  rawValidation() {
    return { errors: [] };
  },
};
