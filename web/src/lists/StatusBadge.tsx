/** A run status as a coloured pill (colours from styles.css' `.status-<status>`). */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`status status-${status}`}>{status}</span>;
}
