// The run's live stream: WebSocket /ws/executions/{id}?after=N folded into statuses.
//
// Thin on purpose: the fold is statuses.ts, the reconnect policy is reconnect.ts. What
// is here is the socket's life: connect, queue messages, fold what arrived once per
// animation frame (a 100-node run can send hundreds of events a second; React renders
// at most once a frame), reconnect after a drop from the last seq, stop when the run
// is over.
import { useCallback, useMemo, useSyncExternalStore } from "react";
import { UNAUTHORIZED_EVENT, type Schemas, api } from "../api/client";
import type { WorkflowDefinition } from "../canvas/definition";
import { type EventPage, HISTORY_PAGE, applyHistoryPage, nextHistoryAfter } from "./history";
import { callFailure } from "./queries";
import { isFinished, onClose, streamUrl } from "./reconnect";
import { type RunEvent, type RunStatuses, type StreamMessage, applyMessage } from "./statuses";

/** The run as a snapshot shows it: GET /workflows/executions/{id} plus its definition. */
export type RunRecord = Schemas["RunView"] & {
  definition?: WorkflowDefinition;
};

export type Connection = "connecting" | "open" | "reconnecting" | "closed";

export interface RunStreamView {
  statuses: RunStatuses | null;
  /** The latest snapshot's run (definition, inputs, workflow, times). */
  run: RunRecord | null;
  connection: Connection;
  /** Why the stream stopped for good (forbidden, unknown run), for the page to show. */
  error: string | null;
  /** While reconnecting: the wait before the next try. */
  retryInMs: number | null;
  /** A page of the run's earlier events is being read. */
  historyLoading: boolean;
  /** Why the last page of earlier events could not be read. */
  historyError: string | null;
}

/** The part of a WebSocket the stream uses (tests pass a fake). */
export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  close(code?: number, reason?: string): void;
}

export interface StreamDeps {
  openSocket: (url: string) => SocketLike;
  location: Pick<Location, "protocol" | "host">;
  /** Run `callback` before the next paint; returns a cancel function. */
  nextFrame: (callback: () => void) => () => void;
  setTimer: (callback: () => void, ms: number) => () => void;
  /** Where UNAUTHORIZED_EVENT goes. */
  events: EventTarget | undefined;
  random: () => number;
  /** GET /workflows/executions/{id}/events/page. */
  fetchEvents: (executionId: string, after: number, limit: number) => Promise<EventPage>;
}

export interface RunStream {
  subscribe(listener: () => void): () => void;
  getView(): RunStreamView;
  /** Connect again now (after a retry re-opened a finished run). */
  restart(): void;
  /** Read the next page of the run's earlier events (the first one is read by itself). */
  loadHistory(): void;
}

async function fetchEventPage(executionId: string, after: number, limit: number): Promise<EventPage> {
  const { data, error, response } = await api.GET("/workflows/executions/{execution_id}/events/page", {
    params: { path: { execution_id: executionId }, query: { after, limit } },
  });
  if (data === undefined) throw callFailure(response, error, "Could not load the run's logs");
  return { events: data.events as RunEvent[], next_after: data.next_after ?? null };
}

function defaultNextFrame(callback: () => void): () => void {
  // Background tabs get no frames: fold on a slow timer there so the queue stays short.
  if (typeof document !== "undefined" && document.visibilityState === "hidden") {
    const id = setTimeout(callback, 500);
    return () => clearTimeout(id);
  }
  const id = requestAnimationFrame(callback);
  return () => cancelAnimationFrame(id);
}

function defaultDeps(): StreamDeps {
  return {
    openSocket: (url) => new WebSocket(url),
    location: globalThis.location,
    nextFrame: defaultNextFrame,
    setTimer: (callback, ms) => {
      const id = setTimeout(callback, ms);
      return () => clearTimeout(id);
    },
    events: typeof window === "undefined" ? undefined : window,
    random: Math.random,
    fetchEvents: fetchEventPage,
  };
}

/**
 * A stream for one run. It connects when the first listener subscribes and lets go
 * of the socket when the last one leaves (React's StrictMode double effects included).
 */
export function createRunStream(executionId: string, overrides: Partial<StreamDeps> = {}): RunStream {
  const deps: StreamDeps = { ...defaultDeps(), ...overrides };
  const listeners = new Set<() => void>();
  let view: RunStreamView = {
    statuses: null,
    run: null,
    connection: "connecting",
    error: null,
    retryInMs: null,
    historyLoading: false,
    historyError: null,
  };
  let historyLoading = false;
  let socket: SocketLike | null = null;
  let queue: StreamMessage[] = [];
  let cancelFrame: (() => void) | null = null;
  let cancelTimer: (() => void) | null = null;
  let failures = 0;
  let stopped = true;

  const publish = (next: Partial<RunStreamView>) => {
    view = { ...view, ...next };
    for (const listener of listeners) listener();
  };

  const flush = () => {
    cancelFrame?.();
    cancelFrame = null;
    if (queue.length === 0) return;
    let statuses = view.statuses;
    let run = view.run;
    for (const message of queue) {
      statuses = applyMessage(statuses, message);
      if (message.type === "snapshot") run = (message as unknown as { run: RunRecord }).run;
    }
    queue = [];
    if (statuses !== view.statuses || run !== view.run) publish({ statuses, run });
    // A paged snapshot: read the first page of the earlier events at once.
    if (nextHistoryAfter(view.statuses) === 0) loadHistory();
  };

  const loadHistory = () => {
    const after = nextHistoryAfter(view.statuses);
    if (after === null || historyLoading) return;
    historyLoading = true;
    publish({ historyLoading: true, historyError: null });
    deps.fetchEvents(executionId, after, HISTORY_PAGE).then(
      (page) => {
        historyLoading = false;
        const statuses = view.statuses && applyHistoryPage(view.statuses, page);
        publish({ statuses, historyLoading: false });
      },
      (error: unknown) => {
        historyLoading = false;
        publish({ historyLoading: false, historyError: error instanceof Error ? error.message : String(error) });
      },
    );
  };

  const detach = (old: SocketLike | null) => {
    if (!old) return;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    old.close(1000);
  };

  const connect = () => {
    cancelTimer?.();
    cancelTimer = null;
    detach(socket);
    const url = streamUrl(deps.location, executionId, view.statuses?.lastSeq ?? 0);
    const current = deps.openSocket(url);
    socket = current;
    let received = false;
    current.onmessage = (event) => {
      if (!received) {
        received = true;
        failures = 0;
        publish({ connection: "open", retryInMs: null, error: null });
      }
      let message: StreamMessage;
      try {
        message = JSON.parse(String(event.data)) as StreamMessage;
      } catch {
        return; // not ours to show; the next snapshot on reconnect is authoritative
      }
      queue.push(message);
      cancelFrame ??= deps.nextFrame(flush);
    };
    current.onclose = (event) => {
      if (socket !== current) return;
      socket = null;
      flush(); // decide on everything that arrived
      if (!received) failures += 1;
      const outcome = onClose(
        {
          code: event.code,
          reason: event.reason,
          runFinished: isFinished(view.statuses?.runStatus),
          failures,
        },
        deps.random,
      );
      switch (outcome.kind) {
        case "done":
          publish({ connection: "closed", retryInMs: null });
          return;
        case "unauthorized":
          publish({ connection: "closed", error: "Not signed in." });
          deps.events?.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
          return;
        case "fatal":
          publish({ connection: "closed", error: outcome.message });
          return;
        case "reconnect":
          publish({ connection: "reconnecting", retryInMs: outcome.delayMs });
          cancelTimer = deps.setTimer(() => {
            cancelTimer = null;
            if (!stopped) {
              publish({ connection: "connecting", retryInMs: null });
              connect();
            }
          }, outcome.delayMs);
      }
    };
  };

  const start = () => {
    stopped = false;
    if (view.connection !== "closed" || view.statuses === null) connect();
  };

  const stop = () => {
    stopped = true;
    cancelTimer?.();
    cancelTimer = null;
    const old = socket;
    socket = null;
    detach(old);
    flush();
  };

  return {
    subscribe(listener) {
      listeners.add(listener);
      if (listeners.size === 1) start();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stop();
      };
    },
    getView: () => view,
    restart() {
      failures = 0;
      publish({ connection: "connecting", error: null, retryInMs: null });
      if (!stopped) connect();
    },
    loadHistory,
  };
}

/**
 * The live state of a run: statuses folded from the stream (one update per frame), the
 * latest snapshot's run record, the connection's state, and `restart` for after a retry.
 */
export function useRunStream(
  executionId: string,
  deps?: Partial<StreamDeps>,
): RunStreamView & { restart: () => void; loadHistory: () => void } {
  // One stream per run id; deps are fixed for a page's life (tests pass fakes).
  const stream = useMemo(() => createRunStream(executionId, deps), [executionId]);
  const view = useSyncExternalStore(stream.subscribe, stream.getView, stream.getView);
  const restart = useCallback(() => stream.restart(), [stream]);
  const loadHistory = useCallback(() => stream.loadHistory(), [stream]);
  return { ...view, restart, loadHistory };
}
