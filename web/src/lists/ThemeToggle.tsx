import { useId } from "react";
import { nextTheme, useTheme } from "../theme";

/** The "Theme" button: cycles system → light → dark, showing the current choice. */
export function ThemeToggle() {
  const [theme, setTheme] = useTheme();
  const valueId = useId();
  const next = nextTheme(theme);
  return (
    <button
      type="button"
      className="secondary theme-toggle"
      aria-describedby={valueId}
      data-theme-choice={theme}
      title={`Colour theme: ${theme} (click for ${next})`}
      onClick={() => setTheme(next)}
    >
      Theme
      {/* Shown as "Theme: dark"; the name stays "Theme", the value is its description. */}
      <span aria-hidden="true">
        : <span id={valueId}>{theme}</span>
      </span>
    </button>
  );
}
