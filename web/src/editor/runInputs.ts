// The run dialog's inputs: a JSON object prefilled from the workflow's variables (pure).

/**
 * A JSON object with one key per declared variable: `variables` may be a list of names,
 * a list of `{name, default}` objects, or a `{name: default}` map. Unknown shapes give `{}`.
 */
export function inputsTemplate(variables: unknown): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  if (Array.isArray(variables)) {
    for (const variable of variables) {
      if (typeof variable === "string" && variable) inputs[variable] = "";
      else if (variable && typeof variable === "object") {
        const { name, default: fallback } = variable as { name?: unknown; default?: unknown };
        if (typeof name === "string" && name) inputs[name] = fallback ?? "";
      }
    }
  } else if (variables && typeof variables === "object") {
    for (const [name, value] of Object.entries(variables)) {
      // A map's value may be a declaration ({type, default}) or the default itself.
      inputs[name] = value && typeof value === "object" && "default" in value ? (value as { default: unknown }).default : (value ?? "");
    }
  }
  return inputs;
}

/** The inputs typed in the dialog, or why they are not a JSON object. */
export function parseInputs(text: string): { inputs: Record<string, unknown> } | { error: string } {
  if (text.trim() === "") return { inputs: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `Inputs are not valid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: "Inputs must be a JSON object, like {\"user_name\": \"Ada\"}." };
  }
  return { inputs: value as Record<string, unknown> };
}
