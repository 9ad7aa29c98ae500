import { type ReactNode, useEffect, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ConfirmDialog } from "../lists/ConfirmDialog";
import { ErrorLines } from "../lists/ErrorLines";
import { ImportWorkflow } from "../lists/ImportWorkflow";
import { Pager } from "../lists/Pager";
import { StatusBadge } from "../lists/StatusBadge";
import { TimeAgo } from "../lists/TimeAgo";
import {
  WORKFLOWS_PAGE_SIZE,
  WORKFLOW_SEARCH_MAX_LENGTH,
  parseWorkflowFilters,
  workflowFiltersToParams,
  workflowSearchQuery,
} from "../lists/filters";
import { fetchWorkflow, useDeleteWorkflow, useDuplicateWorkflow, useWorkflowPage } from "../lists/queries";
import type { WorkflowSummary } from "../lists/types";
import { downloadJson, exportFileName, workflowDefinition } from "../lists/workflowFile";
import { triggerKinds } from "../triggers/summary";
import "../lists/lists.css";

/** How long typing pauses before the search reaches the URL (ms). */
const SEARCH_DEBOUNCE_MS = 250;

type Notice = { kind: "ok" | "error"; content: ReactNode } | null;

/** The workflows list (`/ui/`): search, create, import, duplicate, export, delete. */
export function WorkflowsList() {
  const [params, setParams] = useSearchParams();
  const filters = parseWorkflowFilters(params);
  const [search, setSearch] = useState(filters.q);
  // The URL's search can change without typing (back button, the Workflows link): the box
  // follows it, unless the change is the one this page made from the box.
  const [seenQ, setSeenQ] = useState(filters.q);
  const [pushedQ, setPushedQ] = useState(filters.q);
  if (filters.q !== seenQ) {
    setSeenQ(filters.q);
    if (filters.q !== pushedQ) setSearch(filters.q);
  }
  const q = workflowSearchQuery(filters.q);
  const workflows = useWorkflowPage(filters.page, q);
  const navigate = useNavigate();
  const duplicate = useDuplicateWorkflow();
  const remove = useDeleteWorkflow();
  const [deleting, setDeleting] = useState<WorkflowSummary | null>(null);
  const [notice, setNotice] = useState<Notice>(null);
  const searchBox = useRef<HTMLInputElement>(null);
  // Where the delete dialog sends the focus when it closes: the search box once the
  // workflow is deleted (its Delete button is gone), else back to that button (null).
  const focusAfterDelete = useRef<HTMLElement | null>(null);

  useEffect(() => {
    if (search === filters.q) return;
    const timer = setTimeout(() => {
      setPushedQ(search);
      // A new search starts at its first page: the old page number counted other matches.
      setParams(workflowFiltersToParams({ q: search, page: 0 }), { replace: true });
    }, SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [search, filters.q, setParams]);

  function goToPage(page: number) {
    setParams(workflowFiltersToParams({ q: filters.q, page }));
  }

  function onDuplicate(workflow: WorkflowSummary) {
    setNotice(null);
    duplicate.mutate(workflow.id, {
      onSuccess: (copy) =>
        setNotice({
          kind: "ok",
          content: (
            <>
              Created <Link to={`/workflows/${encodeURIComponent(copy.id)}`}>{copy.name}</Link>
              {copy.status === "paused" && workflow.status !== "paused"
                ? ", paused: its triggers start nothing until you resume it."
                : "."}
            </>
          ),
        }),
      onError: (error) =>
        setNotice({
          kind: "error",
          content: (
            <>
              Could not duplicate {workflow.name}: <ErrorLines error={error} />
            </>
          ),
        }),
    });
  }

  async function onExport(workflow: WorkflowSummary) {
    setNotice(null);
    try {
      const full = await fetchWorkflow(workflow.id);
      downloadJson(workflowDefinition(full), exportFileName(full.name));
    } catch (error) {
      setNotice({
        kind: "error",
        content: (
          <>
            Could not export {workflow.name}: <ErrorLines error={error} />
          </>
        ),
      });
    }
  }

  function onConfirmDelete() {
    if (!deleting) return;
    const { id, name } = deleting;
    remove.mutate(id, {
      onSuccess: () => {
        focusAfterDelete.current = searchBox.current;
        setDeleting(null);
        setNotice({ kind: "ok", content: <>Deleted {name}. Its runs stay in the runs list.</> });
      },
    });
  }

  const shown = workflows.data ?? [];

  return (
    <section aria-labelledby="workflows-title" aria-busy={workflows.isPlaceholderData}>
      <div className="page-title">
        <h1 id="workflows-title">Workflows</h1>
      </div>
      <div className="list-toolbar">
        <input
          ref={searchBox}
          type="search"
          className="list-search"
          aria-label="Search workflows"
          placeholder="Search workflows"
          maxLength={WORKFLOW_SEARCH_MAX_LENGTH}
          value={search}
          onChange={(event) => setSearch(event.target.value)}
        />
        <div className="list-toolbar-actions">
          <button type="button" onClick={() => navigate("/workflows/new")}>
            New workflow
          </button>
          <ImportWorkflow />
        </div>
      </div>
      {notice ? (
        <p role={notice.kind === "error" ? "alert" : "status"} className={`notice notice-${notice.kind}`}>
          {notice.content}
        </p>
      ) : null}
      {workflows.isPending ? (
        <p role="status">Loading workflows…</p>
      ) : workflows.isError ? (
        <div role="alert" className="notice notice-error">
          <ErrorLines error={workflows.error} />{" "}
          <button type="button" className="secondary" onClick={() => void workflows.refetch()}>
            Try again
          </button>
        </div>
      ) : shown.length === 0 && filters.page === 0 && q === undefined ? (
        <div className="empty-state">
          <h2>No workflows yet</h2>
          <p>Build one on the canvas, or import a workflow's JSON file.</p>
          <Link className="button" to="/workflows/new">
            Create your first workflow
          </Link>
        </div>
      ) : (
        <>
          {shown.length === 0 ? (
            <p className="empty-state">
              {q === undefined ? "No workflows on this page." : `No workflows match “${q}”.`}
            </p>
          ) : (
            <table className="table">
              <caption className="visually-hidden">Your workflows</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Version</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last run</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((workflow) => (
                  <WorkflowRow
                    key={workflow.id}
                    workflow={workflow}
                    busy={duplicate.isPending && duplicate.variables === workflow.id}
                    onDuplicate={() => onDuplicate(workflow)}
                    onExport={() => void onExport(workflow)}
                    onDelete={() => {
                      remove.reset();
                      focusAfterDelete.current = null;
                      setDeleting(workflow);
                    }}
                  />
                ))}
              </tbody>
            </table>
          )}
          <Pager
            label="Workflows"
            page={filters.page}
            hasNext={shown.length === WORKFLOWS_PAGE_SIZE}
            onPage={goToPage}
          />
        </>
      )}
      {deleting ? (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          confirmLabel="Delete"
          busy={remove.isPending}
          error={remove.isError ? <ErrorLines error={remove.error} /> : null}
          onConfirm={onConfirmDelete}
          onCancel={() => setDeleting(null)}
          focusOnClose={focusAfterDelete}
        >
          <p>
            The workflow and all its versions are deleted. Its runs stay in the runs list. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </section>
  );
}

interface WorkflowRowProps {
  workflow: WorkflowSummary;
  busy: boolean;
  onDuplicate: () => void;
  onExport: () => void;
  onDelete: () => void;
}

function WorkflowRow({ workflow, busy, onDuplicate, onExport, onDelete }: WorkflowRowProps) {
  const path = `/workflows/${encodeURIComponent(workflow.id)}`;
  const last = workflow.last_run;
  const starts = triggerKinds(workflow.triggers);
  return (
    <tr>
      <th scope="row">
        <Link to={path}>{workflow.name}</Link>
      </th>
      <td>{workflow.version}</td>
      <td>
        <span className={`badge badge-${workflow.status}`}>{workflow.status}</span>
        {starts.length > 0 ? <span className="muted trigger-kinds"> {starts.join(" · ")}</span> : null}
      </td>
      <td>
        {last ? (
          <span className="last-run">
            <Link to={`/runs/${encodeURIComponent(last.execution_id)}`} className="status-link">
              <StatusBadge status={last.status} />
            </Link>
            <TimeAgo iso={last.start_time ?? last.created_at} />
          </span>
        ) : (
          <span className="muted">never</span>
        )}
      </td>
      <td>
        <div className="row-actions">
          <Link to={`${path}/runs`}>Run history</Link>
          <button type="button" className="secondary small" aria-label={`Duplicate ${workflow.name}`} onClick={onDuplicate} disabled={busy}>
            Duplicate
          </button>
          <button type="button" className="secondary small" aria-label={`Export ${workflow.name}`} onClick={onExport}>
            Export
          </button>
          <button type="button" className="secondary small danger-text" aria-label={`Delete ${workflow.name}`} onClick={onDelete}>
            Delete
          </button>
        </div>
      </td>
    </tr>
  );
}
