// A trigger in one line, and the URL a webhook trigger is served at (pure).
import type { TriggerSpec } from "./schema";

function str(value: unknown): string | null {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
}

/** "30 s", "5 min", "2 h", "1 d 2 h" for `every_seconds`. */
export function formatEvery(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["min", 60],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest} s`);
  return parts.join(" ");
}

const AUTH_LABELS: Record<string, string> = { none: "no auth", token: "token", hmac: "HMAC signature" };

/** A webhook path as `/hooks/{path}` matches it: without surrounding slashes (spec.normalize_hook_path). */
export function hookPath(path: string): string {
  return path.replace(/^\/+|\/+$/g, "");
}

/** The full URL a webhook trigger answers at (`origin`: where the API is, the page's own). */
export function hookUrl(origin: string, path: string): string {
  return `${origin.replace(/\/+$/, "")}/hooks/${hookPath(path)}`;
}

/**
 * What a trigger does, in one line: "every 5 min", "cron 0 9 * * * (Europe/Berlin)",
 * "POST /hooks/new-signup · token · sync".
 */
export function triggerSummary(trigger: TriggerSpec): string {
  if (trigger.type === "schedule") {
    const cron = str(trigger.cron);
    const every = typeof trigger.every_seconds === "number" ? trigger.every_seconds : null;
    const zone = str(trigger.timezone) ?? "UTC";
    if (cron !== null) return `cron ${cron} (${zone})`;
    if (every !== null) return `every ${formatEvery(every)}`;
    return "no cron or interval yet";
  }
  if (trigger.type === "webhook") {
    const path = str(trigger.path);
    const methods = Array.isArray(trigger.methods) && trigger.methods.length > 0 ? trigger.methods.map(String).join(", ") : "POST";
    const auth = typeof trigger.auth === "object" && trigger.auth !== null ? str((trigger.auth as Record<string, unknown>).type) : null;
    const parts = [path === null ? "no path yet" : `${methods} /hooks/${hookPath(path)}`];
    if (auth !== null) parts.push(AUTH_LABELS[auth] ?? auth);
    parts.push(str(trigger.respond) ?? "async");
    return parts.join(" · ");
  }
  return str(trigger.id) ?? trigger.type;
}

/** The entries of a definition's `triggers` that are trigger objects (anything else is kept, not drawn). */
export function asTrigger(value: unknown): TriggerSpec | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const type = (value as Record<string, unknown>).type;
  return typeof type === "string" ? (value as TriggerSpec) : null;
}

/** What starts a workflow besides a person: its trigger types, each once ("schedule", "2 webhooks"). */
export function triggerKinds(triggers: unknown): string[] {
  if (!Array.isArray(triggers)) return [];
  const counts = new Map<string, number>();
  for (const trigger of triggers) {
    const type = typeof trigger === "object" && trigger !== null ? (trigger as { type?: unknown }).type : undefined;
    if (typeof type === "string") counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return [...counts].map(([type, count]) => (count === 1 ? type : `${count} ${type}s`));
}
