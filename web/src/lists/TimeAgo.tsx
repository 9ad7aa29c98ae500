import { formatTime } from "../time";
import { relativeTime } from "./format";

/** "3 minutes ago", with the absolute time as its title and machine-readable datetime. */
export function TimeAgo({ iso, now }: { iso: string; now?: number }) {
  return (
    <time dateTime={iso} title={formatTime(iso)}>
      {relativeTime(iso, now)}
    </time>
  );
}
