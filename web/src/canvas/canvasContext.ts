// What a canvas page lends its node cards beyond their data: the editor lets a loop be
// resized (one undo step per resize), the run view lets a loop's item be picked.
import { createContext, useContext } from "react";

export interface CanvasActions {
  /** The editor: a loop group's resize began / ended (bracket it like a drag). */
  onResizeStart?: () => void;
  onResizeEnd?: () => void;
  /** The run view: the item of loop `loopId` whose body states are shown (null: none). */
  itemOf?: (loopId: string) => number | null;
  pickItem?: (loopId: string, index: number | null) => void;
}

const NONE: CanvasActions = {};

export const CanvasContext = createContext<CanvasActions>(NONE);

/** The canvas page's actions for node cards ({} outside a page that lends any). */
export function useCanvasActions(): CanvasActions {
  return useContext(CanvasContext);
}
