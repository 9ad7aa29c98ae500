import { ApiError } from "./queries";

/** An error as readable lines: each of a 422's problems on its own line. */
export function ErrorLines({ error }: { error: unknown }) {
  const lines = error instanceof ApiError ? error.lines : [error instanceof Error ? error.message : String(error)];
  if (lines.length === 1) return <>{lines[0]}</>;
  return (
    <ul className="problem-lines">
      {lines.map((line, index) => (
        <li key={index}>{line}</li>
      ))}
    </ul>
  );
}
