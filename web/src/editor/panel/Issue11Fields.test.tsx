// @vitest-environment jsdom
// The settings forms of the issue-11 node types (loop, merge, code, sub-workflow),
// from schemas shaped like the server's (fixtures/issue11-node-types.json).
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { NodeSpec, NodeTypeInfo, WorkflowDefinition } from "../../canvas/definition";
import { fakeApi, json } from "../../testing/fakeApi";
import { indentText } from "./CodeWidget";
import nodeTypes from "./fixtures/issue11-node-types.json";
import { NodeConfigPanel } from "./NodeConfigPanel";

afterEach(cleanup);

const typeOf = (type: string) => (nodeTypes as NodeTypeInfo[]).find((t) => t.type === type)!;
const definition: WorkflowDefinition = { name: "w", status: "active", nodes: [], edges: [] };

function renderPanel(node: NodeSpec) {
  const onChange = vi.fn();
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <NodeConfigPanel node={node} nodeType={typeOf(node.type)} definition={{ ...definition, nodes: [node] }} issues={[]} onChange={onChange} />
    </QueryClientProvider>,
  );
  return onChange;
}

describe("code node", () => {
  it("edits its source in a monospace textarea where Tab indents", () => {
    const onChange = renderPanel({ id: "c", type: "code", on_error: "fail", config: { code: "x = 1" } });
    const area = screen.getByLabelText(/^Code/) as HTMLTextAreaElement;
    expect(area.tagName).toBe("TEXTAREA");
    expect(area.className).toContain("dw-code");
    area.setSelectionRange(0, 0);
    fireEvent.keyDown(area, { key: "Tab" });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ config: { code: "    x = 1" } }));
  });

  it("indents and outdents lines", () => {
    expect(indentText("a\nb", 0, 3, false)).toEqual({ text: "    a\n    b", start: 4, end: 11 });
    expect(indentText("    a\n  b", 0, 9, true)).toEqual({ text: "a\nb", start: 0, end: 3 });
    expect(indentText("ab", 1, 1, false)).toEqual({ text: "a    b", start: 5, end: 5 });
  });
});

describe("sub-workflow node", () => {
  it("picks the workflow by name from the stored workflows", async () => {
    fakeApi.handler = (request) =>
      new URL(request.url).pathname === "/workflows/"
        ? json([
            { id: "wf-aaaaaaaa-1", name: "Enrich lead" },
            { id: "wf-bbbbbbbb-2", name: "Archive" },
          ])
        : undefined;
    const onChange = renderPanel({ id: "s", type: "sub-workflow", on_error: "fail", config: {} });
    const select = (await screen.findByLabelText(/^Workflow ID/)) as HTMLSelectElement;
    expect(select.tagName).toBe("SELECT");
    await waitFor(() => expect(select.options).toHaveLength(3));
    expect(select.options[1]?.textContent).toContain("Archive");
    fireEvent.change(select, { target: { value: "wf-aaaaaaaa-1" } });
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ config: expect.objectContaining({ workflow_id: "wf-aaaaaaaa-1" }) }));
  });
});

describe("loop and merge nodes", () => {
  it("draw from their schemas: items as a template, the modes as selects", () => {
    renderPanel({ id: "l", type: "loop", on_error: "fail", config: { items: "{{ input.rows }}" } });
    // A list in the schema, written as a template: text first, a list as the alternative.
    const items = screen.getByRole("group", { name: /^Items/ });
    expect(items.textContent).toContain("{{ input.rows }}");
    expect(screen.getByLabelText(/^On Item Error/).tagName).toBe("SELECT");
    expect(screen.getByLabelText(/^Concurrency/)).toBeTruthy();
    cleanup();
    renderPanel({ id: "m", type: "merge", on_error: "fail", config: { mode: "by_key", key: "id" } });
    const mode = screen.getByLabelText(/^Mode/) as HTMLSelectElement;
    expect(mode.selectedOptions[0]?.textContent).toBe("by_key");
  });
});
