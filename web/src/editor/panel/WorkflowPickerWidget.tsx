// The rjsf widget for a workflow id (a `sub-workflow` node's `workflow_id`): a select of
// the stored workflows by name, keeping an id that is not among them (and a text field
// when they cannot be listed).
import { ariaDescribedByIds, type WidgetProps } from "@rjsf/utils";
import { useWorkflowChoices } from "../../triggers/queries";

export function WorkflowPickerWidget(props: WidgetProps) {
  const { id, value, onChange, disabled, readonly, rawErrors } = props;
  const workflows = useWorkflowChoices();
  const current = typeof value === "string" ? value : "";
  const invalid = (rawErrors?.length ?? 0) > 0 ? true : undefined;
  if (workflows.isError) {
    return (
      <input
        id={id}
        className="dw-input"
        value={current}
        disabled={disabled || readonly}
        aria-invalid={invalid}
        aria-describedby={ariaDescribedByIds(id)}
        placeholder="workflow id (the workflows could not be listed)"
        onChange={(event) => onChange(event.target.value === "" ? undefined : event.target.value)}
      />
    );
  }
  const choices = workflows.data ?? [];
  const known = current === "" || choices.some((c) => c.id === current);
  return (
    <select
      id={id}
      className="dw-input"
      value={current}
      disabled={disabled || readonly}
      aria-invalid={invalid}
      aria-describedby={ariaDescribedByIds(id)}
      onChange={(event) => onChange(event.target.value === "" ? undefined : event.target.value)}
    >
      <option value="">{workflows.isPending ? "Loading the workflows…" : "Choose a workflow"}</option>
      {known ? null : <option value={current}>{current} (not in the first 100 workflows)</option>}
      {choices.map((choice) => (
        <option key={choice.id} value={choice.id}>
          {choice.name} · {choice.id.slice(0, 8)}
        </option>
      ))}
    </select>
  );
}
