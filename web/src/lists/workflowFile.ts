// Workflows as JSON files: what export writes and import accepts (the body of POST /workflows/).
import type { Schemas, Workflow } from "../api/client";

export type WorkflowDefinition = Schemas["WorkflowDefinition"];

/** Fields the server assigns, never part of a definition. */
const SERVER_FIELDS = ["id", "_id", "version", "created_at", "updated_at", "last_run"] as const;

export type ParsedFile = { ok: true; definition: WorkflowDefinition } | { ok: false; error: string };

/** A file's text as a workflow definition, or why it is not one. */
export function parseWorkflowFile(text: string): ParsedFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `The file is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, error: "The file must hold one workflow: a JSON object with a name and nodes." };
  }
  const record = { ...(value as Record<string, unknown>) };
  if (typeof record.name !== "string" || record.name.trim() === "") {
    return { ok: false, error: "The workflow has no name: expected a non-empty \"name\" string." };
  }
  if (!Array.isArray(record.nodes)) {
    return { ok: false, error: "The workflow has no nodes: expected a \"nodes\" list." };
  }
  // An exported workflow of another server carries its identity; this server assigns its own.
  for (const field of SERVER_FIELDS) delete record[field];
  return { ok: true, definition: record as WorkflowDefinition };
}

/**
 * The definition of a stored workflow: what POST /workflows/ accepts to recreate it.
 * Everything but what the server assigns, so triggers, the error workflow and fields
 * this app does not know survive an export and a re-import.
 */
export function workflowDefinition(workflow: Workflow): WorkflowDefinition {
  const definition: Record<string, unknown> = { ...workflow };
  for (const field of SERVER_FIELDS) delete definition[field];
  return definition as WorkflowDefinition;
}

/** The name of a duplicate: "<name> (copy)". */
export function copyName(name: string): string {
  return `${name} (copy)`;
}

/**
 * What "Duplicate" creates: the whole definition as "<name> (copy)". A copy of a
 * workflow with triggers starts paused (its schedules would otherwise fire twice) and
 * its webhooks get paths of their own (`<path>-copy`: a path is served by one workflow).
 */
export function duplicateDefinition(workflow: Workflow): WorkflowDefinition {
  const definition: WorkflowDefinition = { ...workflowDefinition(workflow), name: copyName(workflow.name) };
  const triggers = Array.isArray(definition.triggers) ? definition.triggers : [];
  if (triggers.length === 0) return definition;
  return {
    ...definition,
    status: "paused",
    triggers: triggers.map((trigger: unknown) => {
      const item = trigger as Record<string, unknown> | null;
      return item?.type === "webhook" && typeof item.path === "string" ? { ...item, path: `${item.path.replace(/\/+$/, "")}-copy` } : trigger;
    }),
  };
}

/** A file name for a workflow's export: its name with characters file systems refuse replaced. */
export function exportFileName(name: string): string {
  const safe = name.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "_").trim();
  return `${safe || "workflow"}.json`;
}

interface ProblemDetail {
  node_id?: string | null;
  field?: string | null;
  message: string;
}

/** An error body as lines for the screen: a 422's problems (node, field, why) or its detail. */
export function problemLines(body: unknown, fallback: string): string[] {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return [detail];
    if (Array.isArray(detail)) {
      const lines = detail
        .filter((item): item is ProblemDetail => !!item && typeof item === "object" && "message" in item)
        .map((item) => {
          const where = [item.node_id ? `node ${item.node_id}` : null, item.field ? `field ${item.field}` : null]
            .filter(Boolean)
            .join(", ");
          return where ? `${where}: ${item.message}` : item.message;
        });
      if (lines.length > 0) return lines;
    }
  }
  return [fallback];
}

/** Offers `value` as a JSON file download named `fileName`. */
export function downloadJson(value: unknown, fileName: string): void {
  const blob = new Blob([`${JSON.stringify(value, null, 2)}\n`], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked on the next task: the click has started the download by then.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
