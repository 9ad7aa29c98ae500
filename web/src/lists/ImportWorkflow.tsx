import { useRef, useState } from "react";
import { useNavigate } from "react-router";
import { ErrorLines } from "./ErrorLines";
import { useCreateWorkflow } from "./queries";
import { parseWorkflowFile } from "./workflowFile";

/** Reads a file's text (File.text where the browser has it, else a FileReader). */
function readText(file: File): Promise<string> {
  if (typeof file.text === "function") return file.text();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsText(file);
  });
}

/**
 * The "Import JSON" button: picks a .json file, checks it is a workflow, creates it and
 * opens it in the editor; the server's problems are shown under the toolbar.
 */
export function ImportWorkflow() {
  const input = useRef<HTMLInputElement>(null);
  const create = useCreateWorkflow();
  const navigate = useNavigate();
  const [fileError, setFileError] = useState<{ file: string; message: string } | null>(null);
  const [fileName, setFileName] = useState("");

  async function onFile(file: File | undefined) {
    if (!file) return;
    setFileName(file.name);
    setFileError(null);
    create.reset();
    let text: string;
    try {
      text = await readText(file);
    } catch (error) {
      setFileError({ file: file.name, message: error instanceof Error ? error.message : String(error) });
      return;
    }
    const parsed = parseWorkflowFile(text);
    if (!parsed.ok) {
      setFileError({ file: file.name, message: parsed.error });
      return;
    }
    create.mutate(parsed.definition, {
      onSuccess: (workflow) => navigate(`/workflows/${encodeURIComponent(workflow.id)}`),
    });
  }

  return (
    <>
      <button type="button" className="secondary" onClick={() => input.current?.click()} disabled={create.isPending}>
        {create.isPending ? "Importing…" : "Import JSON"}
      </button>
      <input
        ref={input}
        type="file"
        accept=".json,application/json"
        className="visually-hidden"
        tabIndex={-1}
        aria-label="Workflow JSON file"
        onChange={(event) => {
          const file = event.target.files?.[0];
          // Cleared so choosing the same file again (after fixing it) fires a change.
          event.target.value = "";
          void onFile(file);
        }}
      />
      {fileError || create.isError ? (
        <div role="alert" className="notice notice-error import-error">
          <strong>Could not import {fileError?.file ?? fileName}:</strong>{" "}
          {fileError ? fileError.message : <ErrorLines error={create.error} />}
        </div>
      ) : null}
    </>
  );
}
