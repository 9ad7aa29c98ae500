interface PagerProps {
  /** Zero-based page shown. */
  page: number;
  /** Whether a next page may exist (the current one was full). */
  hasNext: boolean;
  onPage: (page: number) => void;
  /** What the pager pages through, for its accessible name. */
  label: string;
}

/** "Previous page" / "Next page" buttons and the page number. */
export function Pager({ page, hasNext, onPage, label }: PagerProps) {
  if (page === 0 && !hasNext) return null;
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" className="secondary" disabled={page === 0} onClick={() => onPage(page - 1)}>
        Previous page
      </button>
      <span aria-live="polite">Page {page + 1}</span>
      <button type="button" className="secondary" disabled={!hasNext} onClick={() => onPage(page + 1)}>
        Next page
      </button>
    </nav>
  );
}
