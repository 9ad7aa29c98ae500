// @vitest-environment jsdom
import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import type { TriggerSpec } from "./schema";
import { TriggerForm } from "./TriggerForm";
import { fixtureTriggerType } from "./testing";

/** The form kept in state, as the editor does: every change is the next `trigger`. */
function Controlled({ initial, onChange }: { initial: TriggerSpec; onChange: (next: TriggerSpec) => void }) {
  const [trigger, setTrigger] = useState(initial);
  return (
    <TriggerForm
      idPrefix="t0"
      trigger={trigger}
      triggerType={fixtureTriggerType(initial.type)}
      issues={[{ field: "auth.credential", message: "no credential named gh" }, { field: null, message: "the same schedule as triggers[0]" }]}
      onChange={(next) => {
        setTrigger(next);
        onChange(next);
      }}
    />
  );
}

describe("TriggerForm", () => {
  it("edits a webhook: plain fields, the auth kind and its own fields; nothing changes by opening it", async () => {
    const onChange = vi.fn();
    render(<Controlled initial={{ type: "webhook", path: "new-signup", auth: { type: "token", credential: "gh" } }} onChange={onChange} />);
    const path = (await screen.findByLabelText(/^Path/)) as HTMLInputElement;
    expect(path.value).toBe("new-signup");
    // Opening the form fills in no defaults: the trigger stays as saved.
    expect(onChange).not.toHaveBeenCalled();
    expect(screen.getByText("no credential named gh")).toBeTruthy();
    expect(screen.getByRole("list", { name: "Problems with this trigger" }).textContent).toContain("the same schedule");
    // A variant's defaults are placeholders, not values.
    expect((screen.getByLabelText(/^Header/) as HTMLInputElement).placeholder).toBe("default: Authorization");

    act(() => fireEvent.change(path, { target: { value: "github/push" } }));
    expect(onChange).toHaveBeenLastCalledWith({ type: "webhook", path: "github/push", auth: { type: "token", credential: "gh" } });

    const kind = screen.getByRole("combobox", { name: "Authentication: kind" });
    act(() => fireEvent.change(kind, { target: { value: "hmac" } }));
    expect(onChange).toHaveBeenLastCalledWith({ type: "webhook", path: "github/push", auth: { type: "hmac" } });
    const credential = screen.getByLabelText(/^Credential/) as HTMLInputElement;
    act(() => fireEvent.change(credential, { target: { value: "github-secret" } }));
    expect(onChange).toHaveBeenLastCalledWith({ type: "webhook", path: "github/push", auth: { type: "hmac", credential: "github-secret" } });

    const methods = screen.getByRole("checkbox", { name: "GET" });
    act(() => fireEvent.click(methods));
    expect(onChange.mock.lastCall?.[0]).toMatchObject({ methods: expect.arrayContaining(["GET"]) });
  });

  it("edits a schedule: cron with suggestions, an interval, the catch-up choice", async () => {
    const onChange = vi.fn();
    render(<Controlled initial={{ type: "schedule", cron: "0 9 * * *" }} onChange={onChange} />);
    const cron = (await screen.findByLabelText(/^Cron expression/)) as HTMLInputElement;
    expect(cron.value).toBe("0 9 * * *");
    expect(cron.getAttribute("list")).toBeTruthy();
    act(() => fireEvent.change(cron, { target: { value: "" } }));
    act(() => fireEvent.change(screen.getByLabelText(/^Every N seconds/), { target: { value: "30" } }));
    expect(onChange).toHaveBeenLastCalledWith({ type: "schedule", every_seconds: 30 });
    const missed = screen.getByRole("combobox", { name: /Missed slots/ });
    expect(within(missed).getAllByRole("option").map((o) => o.textContent)).toEqual(expect.arrayContaining(["none", "latest", "all"]));
    // rjsf's select values are the options' indexes.
    const all = within(missed).getByRole("option", { name: "all" }) as HTMLOptionElement;
    act(() => fireEvent.change(missed, { target: { value: all.value } }));
    expect(onChange).toHaveBeenLastCalledWith({ type: "schedule", every_seconds: 30, catch_up: "all" });
  });

  it("suggests the stored secrets for a webhook's credential", async () => {
    render(
      <TriggerForm
        idPrefix="t1"
        trigger={{ type: "webhook", path: "p", auth: { type: "hmac", credential: "" } }}
        triggerType={fixtureTriggerType("webhook")}
        issues={[]}
        credentials={["github", "stripe"]}
        onChange={() => {}}
      />,
    );
    const credential = (await screen.findByLabelText(/^Credential/)) as HTMLInputElement;
    const list = document.getElementById(credential.getAttribute("list") ?? "");
    expect([...(list?.querySelectorAll("option") ?? [])].map((o) => o.getAttribute("value"))).toEqual(["github", "stripe"]);
  });
});
