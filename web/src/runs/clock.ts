import { useEffect, useState } from "react";

/** Date.now(), refreshed every `everyMs` while `active` (a still clock otherwise). */
export function useNow(active: boolean, everyMs = 250): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), everyMs);
    return () => {
      clearInterval(id);
      setNow(Date.now()); // the last reading covers the moment the run ended
    };
  }, [active, everyMs]);
  return now;
}

/** A timestamp for people: the local date and time, or a dash. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
