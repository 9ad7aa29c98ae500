// The workflow editor (/ui/workflows/new and /ui/workflows/:id): palette, canvas, node
// settings and problems over one zustand store; server state through ./queries.
import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useCallback, useMemo, useRef, useState } from "react";
import { Link, useNavigate } from "react-router";
import { errorMessage } from "../api/client";
import type { NodeTypeInfo, WorkflowDefinition } from "../canvas/definition";
import { EditorCanvas } from "./EditorCanvas";
import { GenerateDialog } from "./GenerateDialog";
import { HistoryDialog } from "./HistoryDialog";
import { Palette } from "./Palette";
import { ProblemsList } from "./ProblemsList";
import { RunDialog } from "./RunDialog";
import { SidePanel } from "./SidePanel";
import { Toolbar } from "./Toolbar";
import { UnsavedGuard } from "./UnsavedGuard";
import { EditorStoreContext, useEditor } from "./context";
import "./editor.css";
import { NotFoundError, ProblemError, useNodeTypes, useSaveWorkflow, useWorkflow } from "./queries";
import { type EditorStore, createEditorStore, currentDefinition } from "./store";
import { useShortcuts } from "./useShortcuts";
import { useValidation } from "./useValidation";

/** What a new workflow starts as. */
export const NEW_WORKFLOW: WorkflowDefinition = { name: "Untitled workflow", status: "active", variables: [], metadata: {}, nodes: [], edges: [] };

/** The editor for workflow `workflowId`, or for a new workflow. */
export function EditorPage({ workflowId }: { workflowId?: string }) {
  const nodeTypes = useNodeTypes();
  const workflow = useWorkflow(workflowId);
  const [store] = useState(createEditorStore);
  const loaded = useRef(false);

  const error = nodeTypes.error ?? (workflowId ? workflow.error : null);
  if (error) {
    const missing = error instanceof NotFoundError;
    return (
      <section className="editor-message" role="alert">
        <h1>{missing ? "Workflow not found" : workflowId ? "Could not open the workflow" : "New workflow"}</h1>
        <p>
          {missing
            ? `There is no workflow with the id “${workflowId}”. It may have been deleted.`
            : `The editor could not load: ${error.message}`}
        </p>
        <Link to="/">Back to workflows</Link>
      </section>
    );
  }
  if (!nodeTypes.data || (workflowId && !workflow.data)) {
    return (
      <section className="editor-message">
        <h1>{workflowId ? "Workflow" : "New workflow"}</h1>
        <p role="status">{workflowId ? "Loading workflow…" : "Loading the editor…"}</p>
      </section>
    );
  }
  // Loaded once: a refetch (after a save, say) must not overwrite what is being edited.
  if (!loaded.current) {
    loaded.current = true;
    const typeMap = Object.fromEntries(nodeTypes.data.map((t) => [t.type, t]));
    if (workflowId && workflow.data) {
      store.getState().load(workflow.data, typeMap, { workflowId, version: workflow.data.version });
    } else {
      store.getState().load(NEW_WORKFLOW, typeMap);
    }
  }
  return (
    <EditorStoreContext.Provider value={store}>
      <ReactFlowProvider>
        <Editor store={store} nodeTypes={nodeTypes.data} isNew={workflowId === undefined} />
      </ReactFlowProvider>
    </EditorStoreContext.Provider>
  );
}

interface EditorProps {
  store: EditorStore;
  nodeTypes: NodeTypeInfo[];
  isNew: boolean;
}

function Editor({ store, nodeTypes, isNew }: EditorProps) {
  const navigate = useNavigate();
  const saveWorkflow = useSaveWorkflow();
  const { screenToFlowPosition, fitView } = useReactFlow();
  const canvasRef = useRef<HTMLDivElement>(null);
  const validation = useValidation(store);
  const [notice, setNotice] = useState<{ kind: "status" | "alert"; text: string } | null>(null);
  const [dialog, setDialog] = useState<"run" | "generate" | "history" | null>(null);
  useShortcuts(store);

  const addAtCentre = useCallback(
    (type: string) => {
      const box = canvasRef.current?.getBoundingClientRect();
      const centre = box ? { x: box.left + box.width / 2, y: box.top + box.height / 2 } : { x: 0, y: 0 };
      const at = screenToFlowPosition(centre);
      store.getState().addNode(type, { x: at.x - 90, y: at.y - 24 });
    },
    [screenToFlowPosition, store],
  );

  /** Stores the definition (new workflow or new version); the id, or null when refused. */
  const save = useCallback(
    async (options: { stay?: boolean } = {}): Promise<string | null> => {
      const state = store.getState();
      const definition = currentDefinition(state);
      setNotice(null);
      try {
        const saved = await saveWorkflow.mutateAsync({ id: state.workflowId, definition });
        store.getState().markSaved(definition, saved.id, saved.version);
        setNotice({ kind: "status", text: `Saved version ${saved.version}.` });
        if (isNew && !options.stay) navigate(`/workflows/${encodeURIComponent(saved.id)}`, { replace: true });
        return saved.id;
      } catch (reason) {
        if (reason instanceof ProblemError) {
          store.getState().setIssues(reason.problems);
          const count = reason.problems.length;
          setNotice({ kind: "alert", text: `Not saved: ${count} problem${count === 1 ? "" : "s"} to fix (see Problems).` });
        } else {
          setNotice({ kind: "alert", text: `Not saved: ${errorMessage(reason, "the server refused")}` });
        }
        return null;
      }
    },
    [isNew, navigate, saveWorkflow, store],
  );
  const saveBeforeRun = useCallback(() => save({ stay: true }), [save]);
  const close = useCallback(() => setDialog(null), []);
  const draftLoaded = useCallback(() => {
    setDialog(null);
    setNotice({ kind: "status", text: "Draft loaded: review it, then save." });
    requestAnimationFrame(() => void fitView({ padding: 0.2 }));
  }, [fitView]);
  const palette = useMemo(() => [...nodeTypes].sort(paletteOrder), [nodeTypes]);
  const restored = useCallback(
    (workflow: WorkflowDefinition & { id: string; version: number }, from: number) => {
      setDialog(null);
      const typeMap = Object.fromEntries(nodeTypes.map((t) => [t.type, t]));
      store.getState().load(workflow, typeMap, { workflowId: workflow.id, version: workflow.version });
      setNotice({ kind: "status", text: `Restored version ${from} as version ${workflow.version}.` });
      requestAnimationFrame(() => void fitView({ padding: 0.2 }));
    },
    [fitView, nodeTypes, store],
  );

  return (
    <div className="editor">
      <EditorHeading isNew={isNew} />
      <Toolbar saving={saveWorkflow.isPending} onSave={() => void save()} onRun={() => setDialog("run")} onGenerate={() => setDialog("generate")} onHistory={() => setDialog("history")} />
      {notice ? (
        <p className={`editor-notice ${notice.kind === "alert" ? "error" : ""}`} role={notice.kind}>
          {notice.text}
        </p>
      ) : null}
      <div className="editor-body">
        <Palette nodeTypes={palette} onAdd={addAtCentre} />
        <div className="editor-main" ref={canvasRef}>
          <EditorCanvas />
        </div>
        <div className="editor-side">
          <SidePanel />
          <ProblemsList status={validation.status} error={validation.error} />
        </div>
      </div>
      <RunDialog open={dialog === "run"} onClose={close} save={saveBeforeRun} />
      <GenerateDialog open={dialog === "generate"} onClose={close} onLoaded={draftLoaded} />
      <HistoryDialog open={dialog === "history"} onClose={close} onRestored={restored} />
      <UnsavedGuard />
    </div>
  );
}

/** The page's heading (for screen readers; the name field shows the same). */
function EditorHeading({ isNew }: { isNew: boolean }) {
  const name = useEditor((s) => s.base.name);
  return <h1 className="visually-hidden">{isNew ? "New workflow" : `Workflow ${name}`}</h1>;
}

/** start first, end last, the rest as the server lists them. */
function paletteOrder(a: NodeTypeInfo, b: NodeTypeInfo): number {
  const rank = (t: NodeTypeInfo) => (t.type === "start" ? 0 : t.type === "end" ? 2 : 1);
  return rank(a) - rank(b);
}
