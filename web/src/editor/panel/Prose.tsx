// Schema descriptions use Markdown's `code` spans; everything else is plain text.

/** Text with its `backtick` spans shown as code. */
export function Prose({ text }: { text: string }) {
  const parts = text.split(/(`[^`]+`)/g);
  return (
    <>
      {parts.map((part, index) =>
        part.startsWith("`") && part.endsWith("`") && part.length > 1 ? <code key={index}>{part.slice(1, -1)}</code> : part,
      )}
    </>
  );
}
