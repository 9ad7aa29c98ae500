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
      {/* Visible value; the button's name stays "Theme", the value is its description. */}
      <span aria-hidden="true">: {theme}</span>
      <span id={valueId} className="visually-hidden">
        {theme}
      </span>
    </button>
  );
}
