// Text helpers for the template editor (pure: no DOM).

/** Whether the text before the cursor ends inside an open `{{ … }}` or `{% … %}`. */
export function insideTemplate(before: string): boolean {
  const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("{%"));
  const close = Math.max(before.lastIndexOf("}}"), before.lastIndexOf("%}"));
  return open !== -1 && open > close;
}

/**
 * The smallest replacement turning `from` into `to` (common prefix and suffix kept), so
 * a value set from outside (undo, another tab) moves the cursor only as far as needed.
 */
export function minimalChange(from: string, to: string): { from: number; to: number; insert: string } | null {
  if (from === to) return null;
  let start = 0;
  const max = Math.min(from.length, to.length);
  while (start < max && from[start] === to[start]) start++;
  let end = 0;
  while (end < max - start && from[from.length - 1 - end] === to[to.length - 1 - end]) end++;
  return { from: start, to: from.length - end, insert: to.slice(start, to.length - end) };
}
