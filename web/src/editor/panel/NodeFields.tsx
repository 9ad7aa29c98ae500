// The node's own settings (name, retry, timeout, on_error), outside its config schema.
import type { ReactNode } from "react";
import type { NodeSpec } from "../../canvas/definition";
import type { FieldErrors, NodeField } from "./issues";
import { RETRY_DEFAULTS, type RetryPolicy, withField, withRetry } from "./nodeSpec";
import { NumberInput } from "./NumberInput";

interface Props {
  node: NodeSpec;
  errors: FieldErrors["node"];
  onChange: (next: NodeSpec) => void;
  disabled: boolean;
  /** Prefix for element ids (one panel per page, but ids must not clash with the canvas). */
  idPrefix: string;
}

const ON_ERROR: { value: NodeSpec["on_error"]; label: string }[] = [
  { value: "fail", label: "Fail the run" },
  { value: "continue", label: "Run the next steps anyway" },
  { value: "branch", label: "Follow the error branch" },
];

function Errors({ id, messages }: { id: string; messages: string[] | undefined }) {
  if (!messages?.length) return null;
  return (
    <ul id={id} className="dw-field-errors">
      {messages.map((message, index) => (
        <li key={index}>{message}</li>
      ))}
    </ul>
  );
}

/** Label, control, help and inline errors of one node-level field. */
function Row({ id, label, help, messages, children }: { id: string; label: string; help?: ReactNode; messages?: string[]; children: ReactNode }) {
  return (
    <div className="dw-field">
      <label htmlFor={id} className="dw-label">
        {label}
      </label>
      {children}
      {help ? (
        <p id={`${id}__help`} className="dw-field-help">
          {help}
        </p>
      ) : null}
      <Errors id={`${id}__errors`} messages={messages} />
    </div>
  );
}

function describedBy(id: string, hasHelp: boolean, messages: string[] | undefined): string | undefined {
  const ids = [hasHelp ? `${id}__help` : "", messages?.length ? `${id}__errors` : ""].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

/** The node's name and id (above its config). */
export function NodeIdentity({ node, errors, onChange, disabled, idPrefix }: Props) {
  const nameId = `${idPrefix}-name`;
  return (
    <div className="dw-node-identity">
      <Row id={nameId} label="Node name" messages={errors.name}>
        <input
          id={nameId}
          className="dw-input"
          value={node.name ?? ""}
          placeholder={node.id}
          disabled={disabled}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={describedBy(nameId, false, errors.name)}
          onChange={(event) => onChange(withField(node, "name", event.target.value === "" ? undefined : event.target.value))}
        />
      </Row>
      <div className="dw-field">
        <span className="dw-label">Node ID</span>
        <code className="dw-node-id">{node.id}</code>
        <Errors id={`${idPrefix}-id__errors`} messages={errors.id} />
      </div>
    </div>
  );
}

const RETRY_FIELDS: { key: keyof RetryPolicy; label: string; min: number; max?: number; step: string; help?: string }[] = [
  { key: "max_attempts", label: "Retry attempts", min: 1, max: 100, step: "1", help: "Tries in all, counting the first (1 = no retry). Only retryable errors are retried." },
  { key: "backoff_seconds", label: "Backoff seconds", min: 0, max: 3600, step: "any", help: "Wait before the first retry." },
  { key: "backoff_factor", label: "Backoff factor", min: 1, max: 10, step: "any", help: "Each further wait is this many times longer." },
  { key: "max_backoff_seconds", label: "Backoff cap (seconds)", min: 0, step: "any", help: "The longest wait between tries." },
];

/** Retry policy, timeout and what a failure does (below the config). */
export function NodeErrorHandling({ node, errors, onChange, disabled, idPrefix }: Props) {
  const retry = { ...RETRY_DEFAULTS, ...(node.retry ?? {}) };
  const timeoutId = `${idPrefix}-timeout`;
  const onErrorId = `${idPrefix}-on-error`;
  const timeoutErrors = errors.timeout_seconds;
  const onErrorErrors = errors.on_error;
  return (
    <div className="dw-node-errors">
      <div className="dw-field-grid">
        {RETRY_FIELDS.map(({ key, label, min, max, step, help }) => {
          const id = `${idPrefix}-retry-${key}`;
          const messages = errors[`retry.${key}` as NodeField];
          return (
            <Row key={key} id={id} label={label} help={help} messages={messages}>
              <NumberInput
                id={id}
                className="dw-input"
                min={min}
                max={max}
                step={step}
                value={retry[key]}
                disabled={disabled}
                aria-invalid={messages ? true : undefined}
                aria-describedby={describedBy(id, !!help, messages)}
                onValue={(value) => onChange(withRetry(node, key, value))}
              />
            </Row>
          );
        })}
      </div>
      <Row id={timeoutId} label="Timeout seconds" help="Empty: the server's default limit." messages={timeoutErrors}>
        <NumberInput
          id={timeoutId}
          className="dw-input"
          min={0}
          max={86400}
          step="any"
          placeholder="none"
          value={node.timeout_seconds ?? undefined}
          disabled={disabled}
          aria-invalid={timeoutErrors ? true : undefined}
          aria-describedby={describedBy(timeoutId, true, timeoutErrors)}
          onValue={(value) => onChange(withField(node, "timeout_seconds", value))}
        />
      </Row>
      <Row
        id={onErrorId}
        label="On error"
        messages={onErrorErrors}
        help={
          <>
            When this node fails: <code>fail</code> stops the run, <code>continue</code> runs the next steps anyway,{" "}
            <code>branch</code> adds an <code>error</code> output handle: connect it to the steps that handle the failure.
          </>
        }
      >
        <select
          id={onErrorId}
          className="dw-input"
          value={node.on_error ?? "fail"}
          disabled={disabled}
          aria-invalid={onErrorErrors ? true : undefined}
          aria-describedby={describedBy(onErrorId, true, onErrorErrors)}
          onChange={(event) => onChange({ ...node, on_error: event.target.value as NodeSpec["on_error"] })}
        >
          {ON_ERROR.map((option) => (
            <option key={option.value} value={option.value}>
              {option.value} — {option.label}
            </option>
          ))}
        </select>
      </Row>
    </div>
  );
}
