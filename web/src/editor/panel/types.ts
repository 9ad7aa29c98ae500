// The contract between the editor (src/editor/) and its node settings panel.
import type { Schemas } from "../../api/client";
import type { NodeSpec, NodeTypeInfo, WorkflowDefinition } from "../../canvas/definition";

/** One validation problem as the API reports it (`POST /workflows/validate`, 422 bodies). */
export type ValidationIssue = Schemas["ProblemDetail"];

export interface NodeConfigPanelProps {
  /** The node being edited. */
  node: NodeSpec;
  /** Its type from `GET /node-types` (undefined for an unknown type: the panel says so). */
  nodeType: NodeTypeInfo | undefined;
  /** The whole workflow: other node ids (`outputs.<id>`) and input names for completion. */
  definition: WorkflowDefinition;
  /** The problems pinned to this node; `field` is a path like `config.prompt`, `retry.max_attempts`. */
  issues: ValidationIssue[];
  /** Called with the whole new spec on every edit (config, name, retry, timeout_seconds, on_error). */
  onChange: (next: NodeSpec) => void;
  onClose?: () => void;
  readOnly?: boolean;
}
