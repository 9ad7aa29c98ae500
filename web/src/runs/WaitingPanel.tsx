// The steps of a run that wait for a person (`wait` nodes): what each asks, its resume
// link (single use; the one an email carries), when it times out, and Approve / Reject,
// which answer through the API (`{"approved": true|false}` becomes the step's output).
import { useRef, useState } from "react";
import { formatTime } from "../time";
import { useResumeNode } from "./queries";
import type { NodeRunState, WaitInfo } from "./statuses";

interface WaitingPanelProps {
  executionId: string;
  states: Readonly<Record<string, NodeRunState>>;
  labelOf: (nodeId: string) => string;
  onSelect: (nodeId: string) => void;
}

/** The "Waiting for a person" region; nothing while no step waits for one. */
export function WaitingPanel({ executionId, states, labelOf, onSelect }: WaitingPanelProps) {
  const waiting = Object.entries(states).flatMap(([id, state]) => (state.wait ? [{ id, wait: state.wait }] : []));
  if (waiting.length === 0) return null;
  return (
    <section className="run-waiting" aria-labelledby="run-waiting-title">
      <h2 id="run-waiting-title">Waiting for a person</h2>
      <ul>
        {waiting.map(({ id, wait }) => (
          <WaitingStep key={id} executionId={executionId} nodeId={id} wait={wait} label={labelOf(id)} onSelect={onSelect} />
        ))}
      </ul>
    </section>
  );
}

function WaitingStep({ executionId, nodeId, wait, label, onSelect }: { executionId: string; nodeId: string; wait: WaitInfo; label: string; onSelect: (id: string) => void }) {
  return (
    <li className="run-waiting-step">
      <p className="run-waiting-title">
        <button type="button" className="link-button" onClick={() => onSelect(nodeId)}>
          {label}
        </button>
        {wait.title ? <strong> {wait.title}</strong> : null}
      </p>
      {wait.message ? <p className="run-waiting-message">{wait.message}</p> : null}
      <p className="muted small">
        {wait.timeoutAt ? <>Times out at {formatTime(wait.timeoutAt)}. </> : "No time limit (the run's own limit applies). "}
        {wait.resumeUrl === null
          ? "Answering it needs a role that may run workflows."
          : "Anyone with the link below can answer once, without signing in."}
      </p>
      {wait.resumeUrl === null ? null : <Answer executionId={executionId} nodeId={nodeId} resumeUrl={wait.resumeUrl} label={label} />}
    </li>
  );
}

/** The resume link (copy, open) and Approve / Reject, for a principal that may resume runs. */
function Answer({ executionId, nodeId, resumeUrl, label }: { executionId: string; nodeId: string; resumeUrl: string; label: string }) {
  const resume = useResumeNode(executionId);
  const [copied, setCopied] = useState(false);
  const link = useRef<HTMLInputElement>(null);
  const sent = resume.variables?.body.approved;

  async function copy() {
    try {
      await navigator.clipboard.writeText(resumeUrl);
    } catch {
      // No clipboard API (plain HTTP): select the text for Ctrl+C.
      link.current?.select();
      document.execCommand?.("copy");
    }
    setCopied(true);
  }

  return (
    <>
      <div className="run-waiting-link">
        <input ref={link} readOnly value={resumeUrl} aria-label={`Resume link of ${label}`} onFocus={(event) => event.currentTarget.select()} />
        <button type="button" className="secondary" aria-label={`Copy the resume link of ${label}`} onClick={() => void copy()}>
          {copied ? "Copied" : "Copy"}
        </button>
        <a href={resumeUrl} target="_blank" rel="noreferrer noopener">
          Open page
        </a>
      </div>
      <div className="run-waiting-actions">
        <button
          type="button"
          onClick={() => resume.mutate({ nodeId, body: { approved: true } })}
          disabled={resume.isPending || resume.isSuccess}
          aria-label={`Approve ${label}`}
        >
          Approve
        </button>
        <button
          type="button"
          className="danger"
          onClick={() => resume.mutate({ nodeId, body: { approved: false } })}
          disabled={resume.isPending || resume.isSuccess}
          aria-label={`Reject ${label}`}
        >
          Reject
        </button>
        {resume.isSuccess ? (
          <span role="status" className="muted">
            {sent ? "Approved" : "Rejected"}: the run goes on.
          </span>
        ) : null}
      </div>
      {resume.error ? (
        <p className="error" role="alert">
          {resume.error.message}
        </p>
      ) : null}
    </>
  );
}
