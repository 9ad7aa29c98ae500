// Token usage and cost as runs and nodes report them (src/ductwork/usage.py): read
// defensively (the fields may be missing on runs stored before usage was counted).

/** One node's usage (`meta.usage` of its state: CallUsage.dump). */
export interface NodeUsage {
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** null: the model has no price (the call is not counted in the run's cost). */
  cost: number | null;
  calls: number;
}

/** A run's usage (`Run.usage`: RunUsage.dump). */
export interface RunUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
  calls: number;
  unpriced_calls: number;
  by_model: Record<string, { prompt_tokens: number; completion_tokens: number; cost: number; calls: number }>;
}

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A node's usage from its metadata, or null when it made no LLM call. */
export function nodeUsage(meta: Readonly<Record<string, unknown>>): NodeUsage | null {
  const usage = meta.usage;
  if (!isObject(usage)) return null;
  const prompt = num(usage.prompt_tokens);
  const completion = num(usage.completion_tokens);
  return {
    model: typeof usage.model === "string" ? usage.model : "",
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: num(usage.total_tokens) || prompt + completion,
    cost: typeof usage.cost === "number" ? usage.cost : null,
    calls: num(usage.calls) || 1,
  };
}

/** A run's usage, or null when it has none (no LLM call, or stored before usage was counted). */
export function runUsage(value: unknown): RunUsage | null {
  if (!isObject(value)) return null;
  const byModel: RunUsage["by_model"] = {};
  if (isObject(value.by_model)) {
    for (const [model, entry] of Object.entries(value.by_model)) {
      if (!isObject(entry)) continue;
      byModel[model] = {
        prompt_tokens: num(entry.prompt_tokens),
        completion_tokens: num(entry.completion_tokens),
        cost: num(entry.cost),
        calls: num(entry.calls),
      };
    }
  }
  const prompt = num(value.prompt_tokens);
  const completion = num(value.completion_tokens);
  const usage: RunUsage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: num(value.total_tokens) || prompt + completion,
    cost: num(value.cost),
    calls: num(value.calls),
    unpriced_calls: num(value.unpriced_calls),
    by_model: byModel,
  };
  return usage.calls === 0 && usage.total_tokens === 0 ? null : usage;
}

/** "$1.23", "$0.50"; small costs keep three significant digits ("$0.00123"). */
export function formatCost(cost: number | null): string {
  if (cost === null) return "unpriced";
  if (cost === 0) return "$0.00";
  if (Math.abs(cost) >= 0.1) return `$${cost.toFixed(2)}`;
  return `$${cost.toPrecision(3).replace(/0+$/, "").replace(/\.$/, "")}`;
}

/** "1,234" */
export function formatTokens(tokens: number): string {
  return tokens.toLocaleString("en");
}
