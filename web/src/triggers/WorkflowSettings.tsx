// The workflow's own settings in the editor's side panel (shown while no node is
// selected): whether its triggers are on (pause / resume), its triggers (schedules,
// webhooks: listed, added, edited with a form generated from `GET /trigger-types`,
// removed), each schedule's next fire times, each webhook's URL, and the workflow that
// runs when a run of this one fails. Loaded in its own chunk (editor/SidePanel.tsx).
import { Suspense, lazy, useEffect, useId, useMemo, useRef, useState } from "react";
import { Link } from "react-router";
import { errorMessage } from "../api/client";
import { useEditor, useEditorStore } from "../editor/context";
import { useWorkflow } from "../editor/queries";
import { jsonEqual } from "../editor/panel/config";
import { formatTime } from "../time";
import { type TriggerIssue, settingsIssues } from "./issues";
import { type ScheduleInfo, useSchedules, useSecretNames, useSetPaused, useTriggerTypes, useWorkflowChoices } from "./queries";
import { type TriggerSpec, type TriggerTypeInfo, newTrigger } from "./schema";
import { asTrigger, hookUrl, triggerSummary } from "./summary";
import { LimitsSettings } from "./LimitsSettings";
import { UsageSummary } from "../versions/UsageSummary";
import "./triggers.css";

const TriggerForm = lazy(async () => ({ default: (await import("./TriggerForm")).TriggerForm }));

const NO_ISSUES: TriggerIssue[] = [];
const TYPE_LABELS: Record<string, string> = { schedule: "Schedule", webhook: "Webhook" };

function typeLabel(type: string): string {
  return TYPE_LABELS[type] ?? type.charAt(0).toUpperCase() + type.slice(1);
}

function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    return "UTC";
  }
}

export function WorkflowSettings() {
  const store = useEditorStore();
  const { workflowId, status, name, rawTriggers, issues, request } = useEditor((s) => ({
    workflowId: s.workflowId,
    status: s.base.status,
    name: s.base.name,
    rawTriggers: s.base.triggers,
    issues: s.issues,
    request: s.settingsRequest,
  }));
  const triggers: unknown[] = useMemo(() => (Array.isArray(rawTriggers) ? rawTriggers : []), [rawTriggers]);
  const problems = useMemo(() => settingsIssues(issues), [issues]);
  const triggerTypes = useTriggerTypes();
  const saved = useWorkflow(workflowId);
  const savedTriggers: unknown[] = Array.isArray(saved.data?.triggers) ? saved.data.triggers : [];
  const hasSavedSchedule = savedTriggers.some((t) => asTrigger(t)?.type === "schedule");
  const schedules = useSchedules(workflowId, saved.data?.version, hasSavedSchedule);
  const [open, setOpen] = useState<number | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const list = useRef<HTMLUListElement>(null);

  // The toolbar's Triggers button or a trigger's problem asked for this panel.
  useEffect(() => {
    if (request === null) return;
    if (request.trigger === null) {
      heading.current?.focus();
      heading.current?.scrollIntoView?.({ block: "nearest" });
      return;
    }
    setOpen(request.trigger);
    requestAnimationFrame(() => {
      const item = list.current?.querySelector<HTMLElement>(`[data-trigger-index="${request.trigger}"] .trigger-toggle`);
      item?.focus();
      item?.scrollIntoView?.({ block: "nearest" });
    });
  }, [request]);

  const typesByName = useMemo(() => new Map((triggerTypes.data ?? []).map((t) => [t.type, t])), [triggerTypes.data]);

  function replace(index: number, next: TriggerSpec) {
    const copy = [...triggers];
    copy[index] = next;
    store.getState().setTriggers(copy, `trigger:${index}`);
  }

  function add(type: string) {
    const taken = triggers.flatMap((t) => {
      const path = asTrigger(t)?.path;
      return typeof path === "string" ? [path] : [];
    });
    const trigger = newTrigger(type, { workflowName: name, timezone: browserZone(), taken });
    store.getState().setTriggers([...triggers, trigger]);
    setOpen(triggers.length);
  }

  function remove(index: number) {
    store.getState().setTriggers(triggers.filter((_, i) => i !== index));
    setOpen((current) => (current === null || current === index ? null : current > index ? current - 1 : current));
  }

  return (
    <section className="workflow-settings" aria-labelledby="workflow-settings-title">
      <h2 id="workflow-settings-title" ref={heading} tabIndex={-1}>
        Workflow settings
      </h2>
      <PauseToggle workflowId={workflowId} status={status} />

      <h3 className="settings-section">
        Triggers <span className="badge">{triggers.length}</span>
      </h3>
      {problems.list.map((message, index) => (
        <p key={index} className="error small">
          {message}
        </p>
      ))}
      {triggers.length === 0 ? (
        <p className="editor-hint">No triggers: the workflow runs when someone starts it. Add a schedule or a webhook to start it on its own.</p>
      ) : (
        <ul className="trigger-list" ref={list}>
          {triggers.map((raw, index) => {
            const trigger = asTrigger(raw);
            return (
              <TriggerItem
                key={index}
                index={index}
                trigger={trigger}
                raw={raw}
                triggerType={trigger ? typesByName.get(trigger.type) : undefined}
                typesLoaded={triggerTypes.isSuccess}
                issues={problems.byTrigger[index] ?? NO_ISSUES}
                open={open === index}
                onToggle={() => setOpen(open === index ? null : index)}
                onChange={(next) => replace(index, next)}
                onRemove={() => remove(index)}
                savedUnchanged={workflowId !== undefined && jsonEqual(savedTriggers[index], raw)}
                schedule={schedules.data?.find((s) => s.index === index)}
                scheduleError={schedules.error ? errorMessage(schedules.error, "the schedule could not be read") : null}
                paused={status === "paused"}
              />
            );
          })}
        </ul>
      )}
      <div className="trigger-add">
        {triggerTypes.isError ? (
          <p className="error small">Trigger types could not be loaded: {triggerTypes.error.message}</p>
        ) : (
          (triggerTypes.data ?? [{ type: "schedule" }, { type: "webhook" }]).map(({ type }) => (
            <button key={type} type="button" className="button-secondary" disabled={!triggerTypes.isSuccess} onClick={() => add(type)}>
              Add {type}
            </button>
          ))
        )}
      </div>

      <ErrorWorkflowPicker workflowId={workflowId} problems={problems.errorWorkflow} />
      <LimitsSettings />
      {workflowId !== undefined ? <UsageSummary workflowId={workflowId} /> : null}
    </section>
  );
}

/** Active or paused, and the button that changes it (`POST /workflows/{id}/pause` or `/resume`). */
function PauseToggle({ workflowId, status }: { workflowId: string | undefined; status: string }) {
  const store = useEditorStore();
  const setPaused = useSetPaused();
  const paused = status === "paused";
  const noteId = useId();

  function toggle() {
    if (workflowId === undefined) return;
    setPaused.mutate(
      { id: workflowId, paused: !paused },
      { onSuccess: (workflow) => store.getState().applyServerStatus(workflow.status, workflow.version) },
    );
  }

  return (
    <div className="settings-status">
      <p className="settings-status-line">
        <span>Status</span> <span className={`badge badge-${paused ? "paused" : "active"}`}>{paused ? "paused" : "active"}</span>
        <button
          type="button"
          className="button-secondary"
          onClick={toggle}
          disabled={workflowId === undefined || setPaused.isPending}
          aria-describedby={noteId}
        >
          {paused ? "Resume triggers" : "Pause triggers"}
        </button>
      </p>
      <p id={noteId} className="editor-hint">
        {workflowId === undefined
          ? "Save the workflow to turn its triggers on or off."
          : paused
            ? "Paused: schedules and webhooks start nothing (slots that pass are not caught up). Manual runs still start."
            : "Active: schedules and webhooks start runs."}
      </p>
      {setPaused.error ? (
        <p className="error small" role="alert">
          {setPaused.error.message}
        </p>
      ) : null}
    </div>
  );
}

interface TriggerItemProps {
  index: number;
  trigger: TriggerSpec | null;
  /** The entry as the definition has it (shown as JSON when it is not a trigger object). */
  raw: unknown;
  triggerType: TriggerTypeInfo | undefined;
  typesLoaded: boolean;
  issues: TriggerIssue[];
  open: boolean;
  onToggle: () => void;
  onChange: (next: TriggerSpec) => void;
  onRemove: () => void;
  /** The saved workflow has this very trigger at this index (its schedule and URL are live). */
  savedUnchanged: boolean;
  schedule: ScheduleInfo | undefined;
  scheduleError: string | null;
  paused: boolean;
}

function TriggerItem(props: TriggerItemProps) {
  const { index, trigger, raw, triggerType, typesLoaded, issues, open, onToggle, onChange, onRemove } = props;
  const credentials = useSecretNames();
  const bodyId = useId();
  const number = index + 1;
  const type = trigger?.type ?? "unknown";
  const summary = trigger ? triggerSummary(trigger) : "not a trigger object";
  return (
    <li className={`trigger-item${issues.length ? " trigger-invalid" : ""}`} data-trigger-index={index}>
      <div className="trigger-head">
        <button type="button" className="trigger-toggle" aria-expanded={open} aria-controls={bodyId} onClick={onToggle}>
          <span className={`badge origin-${type}`}>{typeLabel(type)}</span> <span className="trigger-summary">{summary}</span>
          <span className="visually-hidden">, trigger {number}</span>
          {issues.length ? (
            <span className="trigger-problems">
              {" "}
              · {issues.length} problem{issues.length === 1 ? "" : "s"}
            </span>
          ) : null}
        </button>
        <button type="button" className="button-secondary dw-button-small" aria-label={`Remove trigger ${number}`} onClick={onRemove}>
          Remove
        </button>
      </div>
      {trigger?.type === "schedule" ? <NextFireTimes {...props} /> : null}
      {trigger?.type === "webhook" && typeof trigger.path === "string" && trigger.path.trim() ? (
        <HookUrl number={number} path={trigger.path} live={props.savedUnchanged} paused={props.paused} auth={trigger.auth} />
      ) : null}
      <div id={bodyId} hidden={!open} className="trigger-body">
        {open ? (
          trigger && triggerType ? (
            <Suspense fallback={<p className="editor-hint">Loading the form…</p>}>
              <TriggerForm
                idPrefix={`dw-trigger-${index}`}
                trigger={trigger}
                triggerType={triggerType}
                issues={issues}
                credentials={credentials}
                onChange={onChange}
              />
            </Suspense>
          ) : (
            <>
              {issues.length ? (
                <ul className="dw-field-errors">
                  {issues.map((issue, i) => (
                    <li key={i}>{issue.field ? `${issue.field}: ${issue.message}` : issue.message}</li>
                  ))}
                </ul>
              ) : null}
              <p className="editor-hint">
                {!typesLoaded
                  ? "Loading the trigger types…"
                  : trigger
                    ? `This server has no trigger type “${trigger.type}”: it is kept as it is.`
                    : "This entry is not a trigger (an object with a type): it is kept as it is."}
              </p>
              <pre className="trigger-raw">{JSON.stringify(raw, null, 2)}</pre>
            </>
          )
        ) : null}
      </div>
    </li>
  );
}

/** A saved schedule's next five fire times (after a save for a changed one). */
function NextFireTimes({ index, savedUnchanged, schedule, scheduleError, paused, trigger }: TriggerItemProps) {
  const zone = typeof trigger?.timezone === "string" && trigger.timezone ? trigger.timezone : "UTC";
  const local = browserZone();
  if (!savedUnchanged) return <p className="editor-hint trigger-note">Save to see when it fires next.</p>;
  if (scheduleError) return <p className="editor-hint trigger-note">Next fire times unavailable: {scheduleError}</p>;
  if (!schedule) return <p className="editor-hint trigger-note">Reading the next fire times…</p>;
  const inZone = zone !== local ? new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium", timeZone: zone }) : null;
  return (
    <div className="trigger-note">
      <p className="editor-hint" id={`next-times-${index}`}>
        {paused ? "Paused. Once resumed, it fires next at:" : "Fires next at:"}
      </p>
      {schedule.next.length === 0 ? (
        <p className="editor-hint">Never again (its end time has passed).</p>
      ) : (
        <ol className="trigger-times" aria-labelledby={`next-times-${index}`}>
          {schedule.next.map((time) => (
            <li key={time.utc}>
              <time dateTime={time.utc}>{formatTime(time.utc)}</time>
              {inZone ? <span className="muted"> · {inZone.format(new Date(time.utc))} {zone}</span> : null}
            </li>
          ))}
        </ol>
      )}
      {schedule.lastSlot ? <p className="editor-hint">Last fired for {formatTime(schedule.lastSlot)}.</p> : null}
    </div>
  );
}

/** A webhook's full URL with a Copy button. */
function HookUrl({ number, path, live, paused, auth }: { number: number; path: string; live: boolean; paused: boolean; auth: unknown }) {
  const url = hookUrl(window.location.origin, path);
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const authType = typeof auth === "object" && auth !== null ? (auth as { type?: unknown }).type : undefined;

  async function copy() {
    try {
      await navigator.clipboard.writeText(url);
      setCopied("yes");
    } catch {
      // No clipboard API (a page served over plain HTTP): select the text for Ctrl+C.
      input.current?.select();
      setCopied(document.execCommand?.("copy") ? "yes" : "no");
    }
  }

  return (
    <div className="trigger-note">
      <div className="trigger-url">
        <input ref={input} readOnly value={url} aria-label={`URL of trigger ${number}`} onFocus={(event) => event.currentTarget.select()} />
        <button type="button" className="button-secondary dw-button-small" aria-label={`Copy the URL of trigger ${number}`} onClick={() => void copy()}>
          Copy
        </button>
      </div>
      <p className="editor-hint" role="status">
        {copied === "yes" ? "Copied. " : copied === "no" ? "Selected: press Ctrl+C to copy. " : ""}
        {!live ? "Save to serve this URL." : paused ? "Paused: the URL answers 409 until resumed." : ""}
        {authType === "none" ? " Anyone who knows the URL can start runs." : ""}
      </p>
    </div>
  );
}

/** The workflow started once for each failed run of this one (`error_workflow_id`). */
function ErrorWorkflowPicker({ workflowId, problems }: { workflowId: string | undefined; problems: string[] }) {
  const store = useEditorStore();
  const value = useEditor((s) => (typeof s.base.error_workflow_id === "string" ? s.base.error_workflow_id : ""));
  const workflows = useWorkflowChoices();
  const selectId = useId();
  const helpId = useId();
  const choices = workflows.data ?? [];
  const names = new Map<string, number>();
  for (const choice of choices) names.set(choice.name, (names.get(choice.name) ?? 0) + 1);
  const known = value === "" || choices.some((c) => c.id === value);
  return (
    <div className="settings-error-workflow">
      <h3 className="settings-section">
        <label htmlFor={selectId}>Error workflow</label>
      </h3>
      <select
        id={selectId}
        className="dw-input"
        value={value}
        aria-describedby={helpId}
        aria-invalid={problems.length ? true : undefined}
        onChange={(event) => store.getState().setErrorWorkflow(event.target.value || null)}
      >
        <option value="">None</option>
        {known ? null : <option value={value}>{value} (not in the first 100 workflows)</option>}
        {choices.map((choice) => (
          <option key={choice.id} value={choice.id}>
            {choice.id === workflowId ? `${choice.name} (this workflow)` : choice.name}
            {(names.get(choice.name) ?? 0) > 1 ? ` · ${choice.id.slice(0, 8)}` : ""}
          </option>
        ))}
      </select>
      <p id={helpId} className="editor-hint">
        Runs once for each failed run of this workflow, with its execution id, failed node and error as inputs.
        {workflows.isError ? ` The workflows could not be listed: ${workflows.error.message}` : ""}
      </p>
      {problems.map((message, index) => (
        <p key={index} className="error small">
          {message}
        </p>
      ))}
      {value ? (
        <p className="editor-hint">
          <Link to={`/workflows/${encodeURIComponent(value)}`}>Open the error workflow</Link>
        </p>
      ) : null}
    </div>
  );
}
