// SEED.md's `handleRun` (builder-canvas.tsx) for a canvas that integrates ductwork:
// save the canvas with its node positions, start the run without waiting for it, then
// follow it live over the WebSocket instead of polling. Quoted in the README
// ("Integrating your own canvas"); `npx tsc --noEmit` checks it against the generated
// `src/api/schema.d.ts`, and `handle-run.test.ts` runs it against fakes.
import { createApiClient, type ApiClient, type Schemas } from "../src/api/client";
import { applyMessage, type RunStatuses, type StreamMessage } from "../src/runs/statuses";

/** A node as a React Flow canvas holds it: id, node type, place, and the node's settings. */
export interface CanvasNode {
  id: string;
  type: string;
  position: { x: number; y: number };
  data: { config?: Record<string, unknown>; on_error?: "fail" | "continue" | "branch" };
}

/** A React Flow edge; `sourceHandle` is a condition's `true`/`false` or a node's `error`. */
export interface CanvasEdge {
  source: string;
  target: string;
  sourceHandle?: string | null;
}

/** Opens the run's WebSocket; pass your own to authenticate it (see the README). */
export type OpenSocket = (url: string) => WebSocket;

export interface FollowOptions {
  /** ductwork's WebSocket origin, e.g. "wss://ductwork.example.com". */
  socketBase: string;
  /** Called with the run's statuses after every message (node id -> status, attempts...). */
  onStatus: (statuses: RunStatuses) => void;
  openSocket?: OpenSocket;
  /** Reconnects in a row before giving up (each resumes after the last seq seen). */
  maxReconnects?: number;
}

/** A client for another app, from DUCTWORK_URL and DUCTWORK_API_KEY (Node, or a server). */
export function clientFromEnv(env: Record<string, string | undefined> = process.env): ApiClient {
  const apiKey = env.DUCTWORK_API_KEY;
  if (!apiKey) throw new Error("set DUCTWORK_API_KEY to an API key (ductwork keys create)");
  return createApiClient({ baseUrl: env.DUCTWORK_URL ?? "http://127.0.0.1:8000", apiKey });
}

/** The canvas as the definition `PUT /workflows/{id}` saves, positions included. */
export function toDefinition(
  name: string,
  nodes: CanvasNode[],
  edges: CanvasEdge[],
): Schemas["WorkflowDefinition"] {
  return {
    name,
    status: "active",
    nodes: nodes.map((node) => ({
      id: node.id,
      type: node.type,
      config: node.data.config ?? {},
      position: node.position,
      on_error: node.data.on_error ?? "fail",
    })),
    edges: edges.map((edge) => ({
      from: edge.source,
      to: edge.target,
      ...(edge.sourceHandle ? { branch: edge.sourceHandle } : {}),
    })),
  };
}

/** One readable line for an error body: a 422's problems (node, field, why) or `detail`. */
export function describeError(error: unknown): string {
  if (error && typeof error === "object") {
    const body = error as { message?: unknown; detail?: unknown };
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      const problems = (body.detail as Schemas["ProblemDetail"][]).map((p) =>
        [p.node_id, p.field].filter(Boolean).join(".") + `: ${p.message}`,
      );
      return `${String(body.message ?? "invalid")}: ${problems.join("; ")}`;
    }
  }
  return "the request failed";
}

/** Save the canvas, start a run of it, and resolve with its final statuses. */
export async function handleRun(
  client: ApiClient,
  workflowId: string,
  canvas: { name: string; nodes: CanvasNode[]; edges: CanvasEdge[] },
  inputs: Record<string, unknown>,
  follow: FollowOptions,
): Promise<RunStatuses> {
  const path = { workflow_id: workflowId };
  const saved = await client.PUT("/workflows/{workflow_id}", {
    params: { path },
    body: toDefinition(canvas.name, canvas.nodes, canvas.edges),
  });
  if (saved.error) throw new Error(`save failed: ${describeError(saved.error)}`);

  const started = await client.POST("/workflows/{workflow_id}/execute", {
    params: { path },
    body: { inputs, async_execution: true },
  });
  if (started.error) throw new Error(`run failed to start: ${describeError(started.error)}`);
  return followRun(started.data.execution_id, follow);
}

/**
 * Follow a run over `/ws/executions/{id}?after=N`: a snapshot, then one message per
 * event, folded into per-node statuses. A dropped connection reconnects and resumes
 * after the last seq seen; close 1000 means the run finished; 4401/4403/4404 (not
 * authenticated, not allowed, unknown run) are final.
 */
export function followRun(executionId: string, options: FollowOptions): Promise<RunStatuses> {
  const open = options.openSocket ?? ((url: string) => new WebSocket(url));
  const maxReconnects = options.maxReconnects ?? 5;
  let statuses: RunStatuses | null = null;
  let failures = 0;
  return new Promise((resolve, reject) => {
    const connect = () => {
      const after = statuses?.lastSeq ?? 0;
      const id = encodeURIComponent(executionId);
      const socket = open(`${options.socketBase}/ws/executions/${id}?after=${after}`);
      socket.onmessage = (message: MessageEvent) => {
        failures = 0;
        statuses = applyMessage(statuses, JSON.parse(String(message.data)) as StreamMessage);
        if (statuses) options.onStatus(statuses);
      };
      socket.onclose = (close: CloseEvent) => {
        if (close.code === 1000 && statuses) return resolve(statuses);
        if (close.code >= 4000) return reject(new Error(`${close.code} ${close.reason}`));
        if (++failures > maxReconnects) return reject(new Error("lost the run's live stream"));
        setTimeout(connect, Math.min(500 * 2 ** failures, 10_000));
      };
    };
    connect();
  });
}
