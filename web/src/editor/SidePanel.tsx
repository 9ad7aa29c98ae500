// The side panel: the selected node's settings (NodeConfigPanel) or a hint.
import { Suspense, lazy, useCallback, useEffect, useMemo } from "react";
import { type WorkflowDefinition, toDefinition } from "../canvas/definition";
import { useEditor, useEditorStore } from "./context";
import type { ValidationIssue } from "./pins";
import type { NodeSpec } from "../canvas/definition";

const NO_ISSUES: ValidationIssue[] = [];

// The settings form (rjsf, ajv, CodeMirror) is most of the editor's weight: it loads in
// its own chunk, fetched when the browser is idle after the canvas is up, so opening a
// 300-node workflow does not wait for it and the first click on a node rarely does.
const loadPanel = () => import("./panel/NodeConfigPanel");
const NodeConfigPanel = lazy(async () => ({ default: (await loadPanel()).NodeConfigPanel }));
// The workflow's settings (triggers, pause, error workflow), shown while no node is
// selected: a chunk of its own too, its forms one more (src/triggers/).
const WorkflowSettings = lazy(async () => ({ default: (await import("../triggers/WorkflowSettings")).WorkflowSettings }));

function usePrefetchPanel() {
  useEffect(() => {
    const prefetch = () => void loadPanel();
    if (typeof window.requestIdleCallback === "function") {
      const handle = window.requestIdleCallback(prefetch, { timeout: 3000 });
      return () => window.cancelIdleCallback(handle);
    }
    const timer = window.setTimeout(prefetch, 500);
    return () => window.clearTimeout(timer);
  }, []);
}

export function SidePanel() {
  usePrefetchPanel();
  const store = useEditorStore();
  const selectedId = useEditor((s) => (s.selection.nodes.length === 1 ? (s.selection.nodes[0] ?? null) : null));
  const count = useEditor((s) => s.selection.nodes.length);
  const node = useEditor((s) => (selectedId === null ? undefined : s.nodes.find((n) => n.id === selectedId)?.data.spec));
  const nodeType = useEditor((s) => (node ? s.nodeTypes[node.type] : undefined));
  const issues = useEditor((s) => (selectedId === null ? NO_ISSUES : (s.pins.byNode[selectedId] ?? NO_ISSUES)));
  // The definition without positions: dragging a node does not re-render the form.
  const specs = useEditor((s) => s.nodes.map((n) => n.data.spec));
  const edges = useEditor((s) => s.edges);
  const base = useEditor((s) => s.base);
  const definition: WorkflowDefinition = useMemo(() => {
    const full = toDefinition(base, [], edges);
    return { ...full, nodes: specs };
  }, [base, edges, specs]);

  const onChange = useCallback(
    (next: NodeSpec) => {
      if (selectedId !== null) store.getState().updateSpec(selectedId, next);
    },
    [selectedId, store],
  );
  const onClose = useCallback(() => store.getState().selectNode(null), [store]);

  if (!node) {
    return (
      <>
        <section className="editor-panel-empty" aria-label="Node settings">
          <h2>Node settings</h2>
          <p className="editor-hint">
            {count > 1 ? `${count} nodes selected. Select one to edit it.` : "Select a node to edit its settings."}
          </p>
        </section>
        <Suspense fallback={<p className="editor-hint">Loading the workflow settings…</p>}>
          <WorkflowSettings />
        </Suspense>
      </>
    );
  }
  return (
    <Suspense
      fallback={
        <section className="editor-panel-empty" aria-label="Node settings" aria-busy="true">
          <h2>Node settings</h2>
          <p className="editor-hint">Loading the settings…</p>
        </section>
      }
    >
      <NodeConfigPanel
        key={node.id}
        node={node}
        nodeType={nodeType}
        definition={definition}
        issues={issues}
        onChange={onChange}
        onClose={onClose}
      />
    </Suspense>
  );
}
