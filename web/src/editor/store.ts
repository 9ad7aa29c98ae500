// The editor's state: one zustand store per open editor, with undo/redo by zundo.
//
// History records only the content (the definition's base fields, nodes and edges):
// selection, measured sizes and validation pins change the node objects too, so those
// updates run with history paused. A drag is one step: history pauses at its start
// and the state before it is pushed once at its end.
import { type Connection, type EdgeChange, type NodeChange, applyEdgeChanges, type XYPosition } from "@xyflow/react";
import { temporal } from "zundo";
import { createStore } from "zustand/vanilla";
import {
  type FlowEdge,
  type StepNode,
  type WorkflowDefinition,
  applyCanvasChanges,
  toDefinition,
  toFlow,
} from "../canvas/definition";
import { reparent } from "./loops";
import { type PinnedIssues, type ValidationIssue, applyPins, pinIssues } from "./pins";
import {
  type Clipboard,
  type NodeTypeMap,
  PASTE_OFFSET,
  addNode,
  connect,
  copyNodes,
  deleteSelection,
  paste,
  select,
  updateSpec,
} from "./transforms";
import type { NodeSpec } from "../canvas/definition";

/** What undo/redo restores. */
export interface Content {
  /** The definition's own fields (name, variables, status, metadata, extra keys); nodes/edges empty. */
  base: WorkflowDefinition;
  nodes: StepNode[];
  edges: FlowEdge[];
}

export interface EditorState extends Content {
  /** The stored workflow's id (undefined until a new workflow is first saved). */
  workflowId: string | undefined;
  /** The stored version the editor started from or last saved. */
  version: number | undefined;
  nodeTypes: NodeTypeMap;
  /** Ids of the selected nodes and edges (mirrors React Flow's `selected` flags). */
  selection: { nodes: string[]; edges: string[] };
  /** The definition as last loaded or saved, serialised (the dirty flag compares against it). */
  savedKey: string;
  /** The current definition, serialised: changes exactly when the content does (validation follows it). */
  contentKey: string;
  /** True when the definition differs from the last saved one. */
  dirty: boolean;
  /** The latest validation answer, and the same pinned to nodes. */
  issues: ValidationIssue[];
  pins: PinnedIssues;
  /**
   * A request to show the workflow settings (its triggers), from the toolbar or the
   * problems list: `trigger` to open (null: the settings as a whole), `seq` counts
   * requests so the same one twice still moves the focus.
   */
  settingsRequest: { trigger: number | null; seq: number } | null;

  load(definition: WorkflowDefinition, nodeTypes: NodeTypeMap, meta?: { workflowId?: string; version?: number }): void;
  /** Replace the canvas with an unsaved draft (undoable), optionally with known problems. */
  loadDraft(definition: WorkflowDefinition, issues?: ValidationIssue[]): void;
  setName(name: string): void;
  /** Replace the workflow's triggers (`key`: edits with the same key in quick succession are one undo step). */
  setTriggers(triggers: unknown[], key?: string): void;
  /** The workflow's limits (definition `settings`); undefined for none (`key` as for setTriggers). */
  setSettings(settings: Record<string, unknown> | undefined, key?: string): void;
  /** The workflow started when a run of this one fails; null for none. */
  setErrorWorkflow(id: string | null): void;
  /**
   * The server changed the workflow's status (pause, resume) as version `version`:
   * unsaved edits stay unsaved, and no undo brings the old status back.
   */
  applyServerStatus(status: string, version: number): void;
  /** Deselect every node and show the workflow settings (and trigger `trigger`, when given). */
  showSettings(trigger?: number | null): void;
  onNodesChange(changes: NodeChange<StepNode>[]): void;
  onEdgesChange(changes: EdgeChange<FlowEdge>[]): void;
  onConnect(connection: Connection): void;
  /** A new node of `type` at `position` (relative to loop `parent`, when given: into its body). */
  addNode(type: string, position: XYPosition, parent?: string | null): string;
  updateSpec(id: string, next: NodeSpec): void;
  selectNode(id: string | null): void;
  deleteSelection(): void;
  copySelection(): boolean;
  paste(): string[];
  beginDrag(): void;
  endDrag(): void;
  undo(): void;
  redo(): void;
  setIssues(issues: ValidationIssue[]): void;
  /** The definition `sent` was stored as `version` (under `workflowId`). */
  markSaved(sent: WorkflowDefinition, workflowId: string, version: number): void;
}

/** The definition the editor shows, as the API takes it. */
export function currentDefinition(state: Content): WorkflowDefinition {
  return toDefinition(state.base, state.nodes, state.edges);
}

/** A definition as a comparable string (what "unsaved changes" compares). */
export function definitionKey(definition: WorkflowDefinition): string {
  return JSON.stringify(definition);
}

const SERVER_FIELDS = ["id", "_id", "version", "created_at", "updated_at", "nodes", "edges"];

/** A workflow's definition fields without nodes, edges and what the server adds (id, version, times). */
export function baseOf(definition: WorkflowDefinition): WorkflowDefinition {
  const base: WorkflowDefinition = { ...definition };
  for (const field of SERVER_FIELDS) delete base[field];
  return { ...base, name: definition.name ?? "", status: definition.status ?? "active" };
}

/** Fields of the open workflow a generated draft keeps when it has none of its own. */
const KEPT_BY_DRAFTS = ["triggers", "error_workflow_id", "settings"] as const;

/** Edits of one field within this long are one undo step (typing a name or a prompt). */
const COALESCE_MS = 1000;
const HISTORY_LIMIT = 100;

/** Shared by every editor on the page: copy in one workflow, paste in another. */
let clipboard: Clipboard | null = null;

const EMPTY: WorkflowDefinition = { name: "Untitled workflow", status: "active", variables: [], metadata: {} };

/** A fresh editor store (one per open editor). */
export function createEditorStore() {
  let lastEdit: { key: string; at: number } | null = null;
  let dragStart: Content | null = null;

  const store = createStore<EditorState>()(
    temporal(
      (set, get) => {
        const history = () => store.temporal.getState();
        /** Apply `update` without recording a history step (selection, sizes, pins). */
        const untracked = (update: Partial<EditorState>) => {
          const tracking = history().isTracking;
          if (tracking) history().pause();
          set(update);
          if (tracking) history().resume();
        };
        /** Apply a content edit; edits of the same `key` in quick succession share one step. */
        const edit = (update: Partial<EditorState>, key?: string) => {
          // An edit while a drag is under way (Delete pressed mid-drag) ends the drag first:
          // React Flow then aborts it without onNodeDragStop, which would leave history paused.
          if (dragStart !== null) finishDrag();
          const now = Date.now();
          const coalesce = key !== undefined && lastEdit?.key === key && now - lastEdit.at < COALESCE_MS;
          lastEdit = key === undefined ? null : { key, at: now };
          if (coalesce) untracked(update);
          else set(update);
        };
        const selectionOf = (nodes: StepNode[], edges: FlowEdge[]) => ({
          nodes: nodes.filter((n) => n.selected).map((n) => n.id),
          edges: edges.filter((e) => e.selected).map((e) => e.id),
        });
        /** Resumes history after a drag and records the drag as one step (if anything moved). */
        const finishDrag = () => {
          const before = dragStart;
          if (before === null) return;
          dragStart = null;
          const movedIds = get()
            .nodes.filter((n) => {
              const old = before.nodes.find((o) => o.id === n.id);
              return old !== undefined && (old.position.x !== n.position.x || old.position.y !== n.position.y);
            })
            .map((n) => n.id);
          // Dropped into a loop or out of one: the same step as the drag.
          if (movedIds.length > 0) {
            const graph = get();
            const next = reparent(graph, movedIds);
            if (next !== graph) set({ nodes: next.nodes, edges: next.edges, selection: selectionOf(next.nodes, next.edges) });
          }
          // A loop's resize is a drag too (LoopCard begins and ends it).
          const resized = get().nodes.some((n) => {
            const old = before.nodes.find((o) => o.id === n.id);
            return old !== undefined && (old.width !== n.width || old.height !== n.height);
          });
          history().resume();
          lastEdit = null;
          refreshDirty();
          if (movedIds.length === 0 && !resized) return;
          const { pastStates } = history();
          store.temporal.setState({ pastStates: [...pastStates, before].slice(-HISTORY_LIMIT), futureStates: [] });
        };
        /** After history restored old nodes: selection follows them, pins stay current. */
        const afterTravel = () => {
          const { nodes, edges, pins } = get();
          untracked({ nodes: applyPins(nodes, pins.byNode), selection: selectionOf(nodes, edges) });
        };

        return {
          base: EMPTY,
          nodes: [],
          edges: [],
          workflowId: undefined,
          version: undefined,
          nodeTypes: {},
          selection: { nodes: [], edges: [] },
          savedKey: definitionKey(toDefinition(EMPTY, [], [])),
          contentKey: definitionKey(toDefinition(EMPTY, [], [])),
          dirty: false,
          issues: [],
          pins: { byNode: {}, general: [] },
          settingsRequest: null,

          load(definition, nodeTypes, meta = {}) {
            const { nodes, edges } = toFlow(definition, nodeTypes);
            const base = baseOf(definition);
            const key = definitionKey(toDefinition(base, nodes, edges));
            set({
              base,
              nodes,
              edges,
              nodeTypes,
              workflowId: meta.workflowId,
              version: meta.version,
              selection: { nodes: [], edges: [] },
              savedKey: key,
              contentKey: key,
              dirty: false,
              issues: [],
              pins: { byNode: {}, general: [] },
            });
            history().clear();
          },

          loadDraft(definition, issues = []) {
            const { nodes, edges } = toFlow(definition, get().nodeTypes);
            // The draft replaces the content but not the identity: saving it makes a new
            // version. What starts the workflow (its triggers, its status) and its error
            // workflow stay unless the draft names its own: a generator knows nothing of them.
            const current = get().base;
            const kept: Record<string, unknown> = { status: current.status };
            for (const field of KEPT_BY_DRAFTS) {
              if (current[field] !== undefined && definition[field] === undefined) kept[field] = current[field];
            }
            const base = { ...baseOf(definition), ...kept, name: definition.name || current.name };
            lastEdit = null;
            set({ base, nodes, edges, selection: { nodes: [], edges: [] } });
            get().setIssues(issues);
          },

          setName(name) {
            edit({ base: { ...get().base, name } }, "name");
          },

          setTriggers(triggers, key) {
            edit({ base: { ...get().base, triggers } }, key);
          },

          setSettings(settings, key) {
            const base: WorkflowDefinition = { ...get().base };
            if (settings === undefined) delete base.settings;
            else base.settings = settings;
            edit({ base }, key);
          },

          setErrorWorkflow(id) {
            const base: WorkflowDefinition = { ...get().base };
            // The server leaves a null error workflow out of what it stores: so does the editor.
            if (id === null) delete base.error_workflow_id;
            else base.error_workflow_id = id;
            edit({ base });
          },

          applyServerStatus(status, version) {
            const withStatus = (content: Content): Content => ({ ...content, base: { ...content.base, status } });
            // Every step of the history gets the new status: undoing an edit must not undo a pause.
            const { pastStates, futureStates } = history();
            store.temporal.setState({
              pastStates: pastStates.map((step) => withStatus(step as Content)),
              futureStates: futureStates.map((step) => withStatus(step as Content)),
            });
            const saved = JSON.parse(get().savedKey) as WorkflowDefinition;
            untracked({ base: { ...get().base, status }, version, savedKey: definitionKey({ ...saved, status }) });
          },

          showSettings(trigger = null) {
            const result = select(get(), []);
            const seq = (get().settingsRequest?.seq ?? 0) + 1;
            untracked({ ...result, selection: selectionOf(result.nodes, result.edges), settingsRequest: { trigger, seq } });
          },

          onNodesChange(changes) {
            const { nodes, edges } = get();
            const next = applyCanvasChanges(changes, nodes);
            // Selecting, measuring and dragging are not edits (a drag is recorded at its end).
            const content = changes.some(
              (c) =>
                c.type === "remove" ||
                c.type === "add" ||
                c.type === "replace" ||
                (c.type === "position" && !c.dragging && dragStart === null),
            );
            const update: Partial<EditorState> = { nodes: next };
            if (changes.some((c) => c.type === "select" || c.type === "remove")) update.selection = selectionOf(next, edges);
            if (content) edit(update);
            else untracked(update);
            // Positions settled (dragging: false) end the drag: React Flow sends them just
            // before onNodeDragStop, and alone when it aborts a drag (no stop event then).
            if (dragStart !== null && changes.some((c) => c.type === "position" && c.dragging === false)) finishDrag();
          },

          onEdgesChange(changes) {
            const { nodes, edges } = get();
            const next = applyEdgeChanges(changes, edges);
            const update: Partial<EditorState> = { edges: next };
            if (changes.some((c) => c.type === "select" || c.type === "remove")) update.selection = selectionOf(nodes, next);
            if (changes.every((c) => c.type === "select")) untracked(update);
            else edit(update);
          },

          onConnect(connection) {
            const graph = get();
            const next = connect(graph, connection);
            if (next !== graph) edit({ edges: next.edges });
          },

          addNode(type, position, parent = null) {
            const result = addNode(get(), type, position, get().nodeTypes, parent);
            edit({ nodes: result.nodes, edges: result.edges, selection: { nodes: [result.id], edges: [] } });
            return result.id;
          },

          updateSpec(id, next) {
            const graph = get();
            const result = updateSpec(graph, id, next, graph.nodeTypes);
            const selection = selectionOf(result.nodes, result.edges);
            edit({ ...result, selection }, `spec:${next.id}`);
          },

          selectNode(id) {
            const result = select(get(), id === null ? [] : [id]);
            untracked({ ...result, selection: selectionOf(result.nodes, result.edges) });
          },

          deleteSelection() {
            const graph = get();
            const result = deleteSelection(graph);
            if (result !== graph) edit({ ...result, selection: { nodes: [], edges: [] } });
          },

          copySelection() {
            const graph = get();
            if (graph.selection.nodes.length === 0) return false;
            clipboard = copyNodes(graph, graph.selection.nodes);
            return true;
          },

          paste() {
            if (clipboard === null) return [];
            const result = paste(get(), clipboard, get().nodeTypes);
            // The next paste lands one step further, not on top of this one.
            // (Body nodes copied with their loop move with it: their positions are relative.)
            const copied = new Set(clipboard.nodes.map((n) => n.spec.id));
            clipboard = {
              ...clipboard,
              nodes: clipboard.nodes.map((n) =>
                typeof n.spec.parent === "string" && copied.has(n.spec.parent)
                  ? n
                  : { ...n, position: { x: n.position.x + PASTE_OFFSET, y: n.position.y + PASTE_OFFSET } },
              ),
            };
            edit({ nodes: result.nodes, edges: result.edges, selection: { nodes: result.ids, edges: [] } });
            return result.ids;
          },

          beginDrag() {
            if (dragStart !== null) return;
            const { base, nodes, edges } = get();
            dragStart = { base, nodes, edges };
            history().pause();
          },

          endDrag() {
            finishDrag();
          },

          undo() {
            lastEdit = null;
            history().undo();
            afterTravel();
          },

          redo() {
            lastEdit = null;
            history().redo();
            afterTravel();
          },

          setIssues(issues) {
            const state = get();
            const pins = pinIssues(issues, currentDefinition(state));
            untracked({ issues, pins, nodes: applyPins(state.nodes, pins.byNode) });
          },

          markSaved(sent, workflowId, version) {
            const savedKey = definitionKey(sent);
            set({ savedKey, workflowId, version, dirty: get().contentKey !== savedKey });
          },
        };
      },
      {
        partialize: (state): Content => ({ base: state.base, nodes: state.nodes, edges: state.edges }),
        // A step only when the content changed (objects are replaced on every real edit).
        equality: (a, b) => a.base === b.base && a.nodes === b.nodes && a.edges === b.edges,
        limit: HISTORY_LIMIT,
      },
    ),
  );

  function refreshDirty() {
    const state = store.getState();
    const contentKey = definitionKey(currentDefinition(state));
    if (contentKey !== state.contentKey) store.setState({ contentKey, dirty: contentKey !== state.savedKey });
  }

  // The content key (and the dirty flag) follow every content change; undoing back to
  // the saved state clears the flag.
  store.subscribe((state, previous) => {
    if (state.base === previous.base && state.nodes === previous.nodes && state.edges === previous.edges) return;
    // Positions settle when a drag ends: no serialising on every frame of one.
    if (dragStart !== null) return;
    refreshDirty();
  });

  return store;
}

export type EditorStore = ReturnType<typeof createEditorStore>;
