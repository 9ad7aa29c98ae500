// The workflow's limits in its settings panel: how many runs at once, the most a run
// and a day of runs may cost, and how long its runs are kept (definition `settings`).
import { useId, useMemo } from "react";
import { useEditor, useEditorStore } from "../editor/context";
import { NumberInput } from "../editor/panel/NumberInput";
import { type LimitField, type WorkflowLimits, limitIssues, limitValue, withLimit } from "./limits";

interface FieldInfo {
  field: LimitField;
  label: string;
  help: string;
  step: string;
  min: number;
}

const FIELDS: FieldInfo[] = [
  { field: "max_concurrent_runs", label: "Runs at once", help: "More runs wait in the queue (FIFO).", step: "1", min: 1 },
  { field: "max_cost_per_run", label: "Budget per run ($)", help: "A run that reaches it fails at its next AI call.", step: "0.01", min: 0 },
  { field: "max_cost_per_day", label: "Budget per day ($)", help: "Runs of this workflow stop calling AI models for the rest of the day (UTC).", step: "0.01", min: 0 },
  { field: "retention.days", label: "Keep runs for (days)", help: "Finished runs older than this are deleted.", step: "1", min: 1 },
  { field: "retention.runs", label: "Keep the last (runs)", help: "Older finished runs beyond this many are deleted.", step: "1", min: 1 },
];

export function LimitsSettings() {
  const store = useEditorStore();
  const { settings, issues } = useEditor((s) => ({ settings: s.base.settings as WorkflowLimits | undefined, issues: s.issues }));
  const problems = useMemo(() => limitIssues(issues), [issues]);
  const baseId = useId();
  return (
    <div className="settings-limits" role="group" aria-labelledby={`${baseId}-title`}>
      <h3 className="settings-section" id={`${baseId}-title`}>
        Limits and retention
      </h3>
      <p className="editor-hint">Empty: no limit of this workflow's own (the server's defaults apply).</p>
      {(problems[""] ?? []).map((message, index) => (
        <p key={index} className="error small">
          {message}
        </p>
      ))}
      {FIELDS.map(({ field, label, help, step, min }) => {
        const id = `${baseId}-${field}`;
        const fieldProblems = problems[field] ?? [];
        return (
          <div key={field} className="settings-limit">
            <label htmlFor={id}>{label}</label>
            <NumberInput
              id={id}
              className="dw-input"
              min={min}
              step={step}
              value={limitValue(settings, field)}
              aria-describedby={`${id}-help`}
              aria-invalid={fieldProblems.length ? true : undefined}
              onValue={(value) => store.getState().setSettings(withLimit(settings, field, value), `settings:${field}`)}
            />
            <p id={`${id}-help`} className="editor-hint">
              {help}
            </p>
            {fieldProblems.map((message, index) => (
              <p key={index} className="error small">
                {message}
              </p>
            ))}
          </div>
        );
      })}
    </div>
  );
}
