// The colour theme: the user's choice (system, light or dark), kept in localStorage and
// applied as `data-theme` on <html>, which styles.css lets override prefers-color-scheme.
import { useSyncExternalStore } from "react";

export type ThemeChoice = "system" | "light" | "dark";
export type ColorMode = "light" | "dark";

export const THEME_STORAGE_KEY = "ductwork:theme";
export const THEME_CHOICES: readonly ThemeChoice[] = ["system", "light", "dark"];

const DARK_QUERY = "(prefers-color-scheme: dark)";

/** A stored value as a theme choice; anything unknown means "system". */
export function parseTheme(value: string | null | undefined): ThemeChoice {
  return value === "light" || value === "dark" ? value : "system";
}

/** The choice after `choice` in the toggle's cycle: system → light → dark → system. */
export function nextTheme(choice: ThemeChoice): ThemeChoice {
  return THEME_CHOICES[(THEME_CHOICES.indexOf(choice) + 1) % THEME_CHOICES.length] ?? "system";
}

/** The colours a choice shows, given whether the system prefers dark. */
export function resolveColorMode(choice: ThemeChoice, systemPrefersDark: boolean): ColorMode {
  if (choice === "system") return systemPrefersDark ? "dark" : "light";
  return choice;
}

function storage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    // Storage can be blocked (privacy settings): the theme then lasts for the visit only.
    return null;
  }
}

let current: ThemeChoice = parseTheme(storage()?.getItem(THEME_STORAGE_KEY));
const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The stored choice (system when none). */
export function getTheme(): ThemeChoice {
  return current;
}

/** Sets `data-theme` on the root element; "system" removes it so the media query decides. */
export function applyTheme(choice: ThemeChoice, root: HTMLElement = document.documentElement): void {
  if (choice === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", choice);
}

/** Chooses a theme: stores it, applies it and tells the hooks. */
export function setTheme(choice: ThemeChoice): void {
  current = choice;
  try {
    const store = storage();
    if (choice === "system") store?.removeItem(THEME_STORAGE_KEY);
    else store?.setItem(THEME_STORAGE_KEY, choice);
  } catch {
    // Quota or blocked storage: keep the choice in memory.
  }
  if (typeof document !== "undefined") applyTheme(choice);
  for (const listener of listeners) listener();
}

/** Applies the stored choice; call once before the first render to avoid a flash. */
export function initTheme(): void {
  current = parseTheme(storage()?.getItem(THEME_STORAGE_KEY));
  applyTheme(current);
}

/** The theme choice and a setter, re-rendering when it changes. */
export function useTheme(): [ThemeChoice, (choice: ThemeChoice) => void] {
  const choice = useSyncExternalStore(subscribe, getTheme, getTheme);
  return [choice, setTheme];
}

function darkMedia(): MediaQueryList | null {
  return typeof window !== "undefined" && typeof window.matchMedia === "function"
    ? window.matchMedia(DARK_QUERY)
    : null;
}

function subscribeSystem(listener: () => void): () => void {
  const media = darkMedia();
  media?.addEventListener("change", listener);
  return () => media?.removeEventListener("change", listener);
}

function systemPrefersDark(): boolean {
  return darkMedia()?.matches ?? false;
}

/** The colours on screen now ("light" or "dark"), e.g. for `<ReactFlow colorMode>`. */
export function useColorMode(): ColorMode {
  const choice = useSyncExternalStore(subscribe, getTheme, getTheme);
  const prefersDark = useSyncExternalStore(subscribeSystem, systemPrefersDark, () => false);
  return resolveColorMode(choice, prefersDark);
}
