// Time for people, shared by every page: durations, timestamps and a ticking clock.
import { useEffect, useState } from "react";

/** A duration in ms as "850 ms", "12.3 s", "4m 05s", "2h 03m" (a dash when unknown). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const total = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (total < 3600) return `${Math.floor(total / 60)}m ${pad(total % 60)}s`;
  return `${Math.floor(total / 3600)}h ${pad(Math.floor((total % 3600) / 60))}m`;
}

/** A timestamp as the local date and time; a dash when absent, the raw value when unparsable. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Date.now(), refreshed every `everyMs` while `active` (a still clock otherwise). */
export function useNow(active: boolean, everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), everyMs);
    return () => {
      clearInterval(id);
      setNow(Date.now()); // the last reading covers the moment the clock stopped
    };
  }, [active, everyMs]);
  return now;
}
