// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { THEME_STORAGE_KEY, applyTheme, getTheme, nextTheme, parseTheme, resolveColorMode, setTheme } from "./theme";

afterEach(() => setTheme("system"));

describe("theme", () => {
  it("cycles system → light → dark → system", () => {
    expect(nextTheme("system")).toBe("light");
    expect(nextTheme("light")).toBe("dark");
    expect(nextTheme("dark")).toBe("system");
  });

  it("reads unknown stored values as system", () => {
    expect(parseTheme(null)).toBe("system");
    expect(parseTheme("purple")).toBe("system");
    expect(parseTheme("dark")).toBe("dark");
  });

  it("resolves system through the media preference", () => {
    expect(resolveColorMode("system", true)).toBe("dark");
    expect(resolveColorMode("system", false)).toBe("light");
    expect(resolveColorMode("light", true)).toBe("light");
    expect(resolveColorMode("dark", false)).toBe("dark");
  });

  it("stores and applies a choice, and system clears both", () => {
    setTheme("dark");
    expect(getTheme()).toBe("dark");
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe("dark");
    expect(document.documentElement.getAttribute("data-theme")).toBe("dark");
    setTheme("system");
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBeNull();
    expect(document.documentElement.hasAttribute("data-theme")).toBe(false);
  });

  it("applies to a given element", () => {
    const root = document.createElement("div");
    applyTheme("light", root);
    expect(root.dataset.theme).toBe("light");
  });
});
