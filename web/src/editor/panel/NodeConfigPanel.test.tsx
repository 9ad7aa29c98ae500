// @vitest-environment jsdom
import { EditorView } from "@codemirror/view";
import { completionStatus, currentCompletions, startCompletion } from "@codemirror/autocomplete";
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { NodeSpec, WorkflowDefinition } from "../../canvas/definition";
import { NodeConfigPanel } from "./NodeConfigPanel";
import { fixtureType } from "./testing";
import type { NodeConfigPanelProps, ValidationIssue } from "./types";

afterEach(cleanup);

const definition: WorkflowDefinition = {
  name: "Summarise signups",
  status: "active",
  metadata: {},
  variables: ["email"],
  nodes: [
    { id: "start", type: "start", on_error: "fail" },
    { id: "ai1", type: "ai-processor", on_error: "fail", config: { prompt: "Summarise {{ email }}" } },
    { id: "check", type: "condition", on_error: "fail", config: { condition: "outputs.ai1 != ''" } },
    { id: "hook", type: "webhook", on_error: "fail", config: { url: "https://example.com/hook", headers: { "X-Team": "growth" } } },
  ],
  edges: [],
};

function nodeById(id: string): NodeSpec {
  return definition.nodes!.find((node) => node.id === id)!;
}

function renderPanel(overrides: Partial<NodeConfigPanelProps> & { node: NodeSpec }) {
  const onChange = vi.fn();
  const props: NodeConfigPanelProps = {
    nodeType: fixtureType(overrides.node.type),
    definition,
    issues: [],
    onChange,
    ...overrides,
  };
  const view = render(<NodeConfigPanel {...props} />);
  return { onChange, props, ...view };
}

/** The CodeMirror view behind an editor's content element (jsdom cannot type into it). */
function editorOf(element: HTMLElement): EditorView {
  const view = EditorView.findFromDOM(element);
  if (!view) throw new Error("not a CodeMirror editor");
  return view;
}

/** Replaces an editor's text as typing would (inside act: rjsf reports changes after a commit). */
function typeInto(element: HTMLElement, text: string) {
  const view = editorOf(element);
  act(() => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }));
}

/** The completion labels offered after typing `text` (the cursor at its end). */
async function completionsAt(element: HTMLElement, text: string): Promise<string[]> {
  const view = editorOf(element);
  act(() => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, selection: { anchor: text.length } }));
  act(() => {
    startCompletion(view);
  });
  await waitFor(() => expect(completionStatus(view.state)).not.toBe("pending"));
  return currentCompletions(view.state).map((option) => option.label);
}

/** rjsf's selects use option indexes as values: pick an option by its text. */
function choose(select: HTMLElement, text: string) {
  const option = within(select).getByRole<HTMLOptionElement>("option", { name: text });
  fireEvent.change(select, { target: { value: option.value } });
}

describe("NodeConfigPanel: ai-processor", () => {
  it("shows the type's description, labelled fields, a required mark and a template editor", () => {
    renderPanel({ node: nodeById("ai1") });
    const panel = screen.getByRole("region", { name: "Node settings" });
    expect(within(panel).getByText(/Send a prompt to an LLM/)).toBeTruthy();
    const prompt = within(panel).getByRole("textbox", { name: "Prompt" });
    expect(prompt.getAttribute("aria-required")).toBe("true");
    expect(prompt.textContent).toContain("Summarise {{ email }}");
    // The visible label carries the required mark.
    const label = document.getElementById(`${prompt.id}__label`)!;
    expect(label.textContent).toBe("Prompt*");
    expect(within(label as HTMLElement).getByTitle("required")).toBeTruthy();
    expect(within(panel).getByRole("spinbutton", { name: "Temperature" })).toHaveProperty("max", "2");
    expect(within(panel).getByRole("checkbox", { name: "Cache" })).toBeTruthy();
    expect(within(panel).getByRole("textbox", { name: "Model" })).toBeTruthy();
    // The `{{ email }}` span is marked.
    expect(prompt.querySelector(".dw-cm-template")?.textContent).toBe("{{ email }}");
    for (const name of ["Node name", "Retry attempts", "Backoff seconds", "Backoff factor", "Timeout seconds", "On error"]) {
      expect(within(panel).getByLabelText(name)).toBeTruthy();
    }
    expect(within(panel).getByText("ai1", { selector: "code" })).toBeTruthy();
  });

  it("calls onChange with the whole spec, without defaults it did not set", () => {
    const { onChange } = renderPanel({ node: nodeById("ai1") });
    typeInto(screen.getByRole("textbox", { name: "Prompt" }), "Hello {{ email }}");
    expect(onChange).toHaveBeenLastCalledWith({ ...nodeById("ai1"), config: { prompt: "Hello {{ email }}" } });
    fireEvent.change(screen.getByRole("spinbutton", { name: "Temperature" }), { target: { value: "0.2" } });
    expect(onChange).toHaveBeenLastCalledWith({ ...nodeById("ai1"), config: { prompt: "Hello {{ email }}", temperature: 0.2 } });
  });

  it("removes a cleared optional field from the config", () => {
    const node = { ...nodeById("ai1"), config: { prompt: "p", model: "gpt" } };
    const { onChange } = renderPanel({ node });
    typeInto(screen.getByRole("textbox", { name: "Model" }), "");
    expect(onChange).toHaveBeenLastCalledWith({ ...node, config: { prompt: "p" } });
  });

  it("edits the node's own fields", () => {
    const node = nodeById("ai1");
    const { onChange } = renderPanel({ node });
    fireEvent.change(screen.getByLabelText("Node name"), { target: { value: "Summarise" } });
    expect(onChange).toHaveBeenLastCalledWith({ ...node, name: "Summarise" });
    fireEvent.change(screen.getByLabelText("Retry attempts"), { target: { value: "3" } });
    expect(onChange.mock.lastCall![0].retry).toMatchObject({ max_attempts: 3, backoff_seconds: 1 });
    fireEvent.change(screen.getByLabelText("Timeout seconds"), { target: { value: "30" } });
    expect(onChange).toHaveBeenLastCalledWith({ ...node, timeout_seconds: 30 });
    fireEvent.change(screen.getByLabelText("On error"), { target: { value: "branch" } });
    expect(onChange).toHaveBeenLastCalledWith({ ...node, on_error: "branch" });
  });

  it("shows issues at their fields and the rest at the top", () => {
    const issues: ValidationIssue[] = [
      { node_id: "ai1", field: "config.prompt", message: "String should have at least 1 character" },
      { node_id: "ai1", field: "retry.max_attempts", message: "at most 10 attempts here" },
      { node_id: "ai1", field: "type", message: "something about the type" },
    ];
    renderPanel({ node: nodeById("ai1"), issues });
    const prompt = screen.getByRole("textbox", { name: "Prompt" });
    expect(prompt.getAttribute("aria-invalid")).toBe("true");
    const promptField = prompt.closest(".dw-field") as HTMLElement;
    expect(within(promptField).getByText("String should have at least 1 character")).toBeTruthy();
    const attempts = screen.getByLabelText("Retry attempts");
    expect(within(attempts.closest(".dw-field") as HTMLElement).getByText("at most 10 attempts here")).toBeTruthy();
    expect(attempts.getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByRole("list", { name: "Problems with this node" }).textContent).toContain("type: something about the type");
  });

  it("follows the node prop (undo, another node) and its definition", () => {
    const node = nodeById("ai1");
    const { rerender, props } = renderPanel({ node });
    rerender(<NodeConfigPanel {...props} node={{ ...node, name: "Renamed", config: { prompt: "Undone" } }} />);
    expect(screen.getByRole("textbox", { name: "Prompt" }).textContent).toBe("Undone");
    expect(screen.getByLabelText<HTMLInputElement>("Node name").value).toBe("Renamed");
    rerender(<NodeConfigPanel {...props} node={nodeById("check")} nodeType={fixtureType("condition")} />);
    expect(screen.queryByRole("textbox", { name: "Prompt" })).toBeNull();
    expect(screen.getByRole("textbox", { name: "Condition" }).textContent).toBe("outputs.ai1 != ''");
  });

  it("keeps edits when the parent feeds them back", () => {
    function Harness() {
      const [node, setNode] = useState<NodeSpec>(nodeById("ai1"));
      return <NodeConfigPanel node={node} nodeType={fixtureType("ai-processor")} definition={definition} issues={[]} onChange={setNode} />;
    }
    render(<Harness />);
    const prompt = screen.getByRole("textbox", { name: "Prompt" });
    const view = editorOf(prompt);
    view.dispatch({ changes: { from: view.state.doc.length, insert: "!" }, selection: { anchor: 3 } });
    expect(view.state.doc.toString()).toBe("Summarise {{ email }}!");
    expect(view.state.selection.main.head).toBe(3);
  });

  it("applies a value from outside (undo) without moving the cursor", () => {
    const node = nodeById("ai1");
    const { rerender, props } = renderPanel({ node });
    const view = editorOf(screen.getByRole("textbox", { name: "Prompt" }));
    act(() => view.dispatch({ selection: { anchor: 4 } }));
    rerender(<NodeConfigPanel {...props} node={{ ...node, config: { prompt: "Summarise {{ email }} briefly" } }} />);
    expect(view.state.doc.toString()).toBe("Summarise {{ email }} briefly");
    expect(view.state.selection.main.head).toBe(4);
    // The echo of a value set from outside is not reported as an edit.
    expect(props.onChange).not.toHaveBeenCalled();
  });

  it("disables everything but Close when read-only", () => {
    const onClose = vi.fn();
    renderPanel({ node: nodeById("ai1"), readOnly: true, onClose });
    expect(screen.getByLabelText<HTMLInputElement>("Node name").disabled).toBe(true);
    expect(screen.getByRole("spinbutton", { name: "Temperature" })).toHaveProperty("disabled", true);
    expect(screen.getByRole("textbox", { name: "Prompt" }).getAttribute("contenteditable")).toBe("false");
    fireEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(onClose).toHaveBeenCalled();
  });
});

describe("NodeConfigPanel: condition", () => {
  it("edits the condition as an expression with completion of names", async () => {
    const { onChange } = renderPanel({ node: nodeById("check") });
    const condition = screen.getByRole("textbox", { name: "Condition" });
    expect(condition.closest("[data-mode]")?.getAttribute("data-mode")).toBe("expression");
    expect(condition.getAttribute("aria-required")).toBe("true");
    typeInto(condition, "outputs.hook.status_code == 200");
    expect(onChange).toHaveBeenLastCalledWith({ ...nodeById("check"), config: { condition: "outputs.hook.status_code == 200" } });

    // No braces needed in an expression: names complete anywhere.
    expect((await completionsAt(condition, "out")).sort()).toEqual(["outputs.ai1", "outputs.hook", "outputs.start"]);
  });

  it("completes names in a template only inside {{ }}", async () => {
    renderPanel({ node: nodeById("ai1") });
    const prompt = screen.getByRole("textbox", { name: "Prompt" });
    expect(await completionsAt(prompt, "Hi {{ em")).toEqual(["email"]);
    expect(await completionsAt(prompt, "Hi {{ email }} em")).toEqual([]);
  });
});

describe("NodeConfigPanel: webhook", () => {
  it("has an enum select, a key-value map and an issue pinned to a header", () => {
    const node = nodeById("hook");
    const { onChange } = renderPanel({
      node,
      issues: [{ node_id: "hook", field: "config.headers.X-Team", message: "header values must be text" }],
    });
    const method = screen.getByRole("combobox", { name: "Method" });
    expect(within(method).getAllByRole("option").map((option) => option.textContent)).toContain("PATCH");
    expect(screen.getByRole("textbox", { name: "URL" }).getAttribute("aria-required")).toBe("true");

    const headers = screen.getByRole("group", { name: "Headers" });
    expect(within(headers).getByRole("textbox", { name: "Headers: name 1" })).toHaveProperty("value", "X-Team");
    expect(within(headers).getByText("X-Team: header values must be text")).toBeTruthy();

    choose(method, "PUT");
    expect(onChange).toHaveBeenLastCalledWith({ ...node, config: { ...node.config, method: "PUT" } });

    fireEvent.click(within(headers).getByRole("button", { name: "Add Headers entry" }));
    fireEvent.change(within(headers).getByRole("textbox", { name: "Headers: name 2" }), { target: { value: "Authorization" } });
    typeInto(within(headers).getByRole("textbox", { name: "Headers: value 2" }), "Bearer {{ secrets.token }}");
    expect(onChange.mock.lastCall![0].config.headers).toEqual({ "X-Team": "growth", Authorization: "Bearer {{ secrets.token }}" });

    fireEvent.click(within(headers).getByRole("button", { name: "Remove Headers entry 1" }));
    expect(onChange.mock.lastCall![0].config.headers).toEqual({ Authorization: "Bearer {{ secrets.token }}" });
  });

  it("offers query as a map or a template, and the body as JSON", () => {
    const node = { ...nodeById("hook"), config: { url: "u", query: "page={{ page }}" } };
    const { onChange } = renderPanel({ node });
    const format = screen.getByRole("combobox", { name: "Query format" });
    expect((format as HTMLSelectElement).value).toBe("text");
    expect(screen.getByRole("textbox", { name: "Query" }).textContent).toBe("page={{ page }}");
    typeInto(screen.getByRole("textbox", { name: "Body" }), '{"a": 1}');
    expect(onChange).toHaveBeenLastCalledWith({ ...node, config: { ...node.config, body: { a: 1 } } });
    typeInto(screen.getByRole("textbox", { name: "Body" }), '{"a": ');
    expect(screen.getByText(/Not valid JSON yet/)).toBeTruthy();
  });

  it("lists integers with add and remove", () => {
    const node = { ...nodeById("hook"), config: { url: "u", expected_status: [200] } };
    const { onChange } = renderPanel({ node });
    fireEvent.click(screen.getByRole("button", { name: "Add item" }));
    expect(onChange.mock.lastCall![0].config.expected_status).toHaveLength(2);
  });
});

describe("NodeConfigPanel: unknown type", () => {
  it("says so and offers the config as JSON", () => {
    const onChange = vi.fn();
    render(
      <NodeConfigPanel node={{ id: "x", type: "mystery", on_error: "fail", config: { a: 1 } }} nodeType={undefined} definition={definition} issues={[]} onChange={onChange} />,
    );
    expect(screen.getByText(/Unknown node type/)).toBeTruthy();
    expect(screen.getByRole("textbox", { name: "Config (JSON)" }).textContent).toContain('"a": 1');
  });
});
