// What started a run, drawn: the trigger type, then its detail (a schedule's slot, a
// webhook's request, the failed run an error workflow handles, linked).
import { Link } from "react-router";
import { formatTime } from "../time";
import { originText, runOrigin } from "./origin";
import "./origin.css";

export function RunOriginView({ trigger }: { trigger: unknown }) {
  const origin = runOrigin(trigger);
  // Runs from before triggers were recorded, and `ductwork run`'s, have none.
  if (origin === null) return <span className="muted">—</span>;
  return (
    <span className="run-origin" title={originText(origin, formatTime)}>
      <span className={`badge origin-${origin.type}`}>{origin.type}</span>
      {origin.slot !== null ? (
        <time dateTime={origin.slot} title={`Slot ${origin.slot}${origin.scheduleKey ? ` of schedule ${origin.scheduleKey}` : ""}`}>
          {formatTime(origin.slot)}
        </time>
      ) : null}
      {origin.request !== null ? <code>{origin.request}</code> : null}
      {origin.failedRun !== null ? (
        <span>
          of{" "}
          <Link to={`/runs/${encodeURIComponent(origin.failedRun)}`} aria-label={`Failed run ${origin.failedRun.slice(0, 8)}`} className="mono">
            {origin.failedRun.slice(0, 8)}
          </Link>
        </span>
      ) : null}
    </span>
  );
}
