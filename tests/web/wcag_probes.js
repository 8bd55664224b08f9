// Measurements for the WCAG 2.2 AA success criteria axe-core cannot decide, run in the page by
// tests/web/test_wcag_measured.py. Each probe returns a list of problems, one string per element,
// naming the element (tag#id.class "text") so a failure says what to fix.
(() => {
  "use strict";

  const TARGETS = 'a[href], button, input:not([type="hidden"]), select, textarea, summary, [role="button"], [tabindex]:not([tabindex="-1"])';

  function describe(el) {
    let name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    if (el.classList.length) name += "." + [...el.classList].join(".");
    if (el.getAttribute("type")) name += `[type=${el.getAttribute("type")}]`;
    const text = (el.getAttribute("aria-label") || el.textContent || el.name || "").trim().replace(/\s+/g, " ");
    return text ? `${name} "${text.slice(0, 40)}"` : name;
  }

  function shown(el) {
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.visibility !== "visible" || rect.width === 0 || rect.height === 0) return false;
    // The skip link waits off-screen until it has focus.
    return rect.right > 0 && rect.bottom > -window.scrollY;
  }

  // --- colour -----------------------------------------------------------------------------------
  function rgba(text) {
    const parts = (text.match(/[\d.]+/g) || []).map(Number);
    return { r: parts[0] || 0, g: parts[1] || 0, b: parts[2] || 0, a: parts.length > 3 ? parts[3] : 1 };
  }

  function luminance(c) {
    const channel = (v) => {
      const s = v / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  }

  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }

  // The colour an element is painted on: the first opaque-ish background up its ancestors.
  function backdrop(el) {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const bg = rgba(getComputedStyle(node).backgroundColor);
      if (bg.a > 0.5) return bg;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  }

  // --- 2.5.8 Target Size (Minimum) ---------------------------------------------------------------
  // The inline exception: a link inside a sentence (its block holds other text).
  function inSentence(el) {
    if (el.tagName !== "A") return false;
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
    const own = el.textContent.trim().length;
    return block !== null && block.textContent.replace(/\s+/g, " ").trim().length > own + 3;
  }

  function targetSize() {
    const targets = [...document.querySelectorAll(TARGETS)].filter(shown).map((el) => {
      const r = el.getBoundingClientRect();
      return { el, r, cx: r.left + r.width / 2, cy: r.top + r.height / 2, small: r.width < 24 || r.height < 24 };
    });
    const problems = [];
    for (const t of targets) {
      if (!t.small || inSentence(t.el)) continue;
      // The spacing exception: a 24 px circle on the target's centre meets no other target, nor
      // another undersized target's circle.
      const crowded = targets.find((o) => {
        if (o === t) return false;
        if (o.small) return Math.hypot(o.cx - t.cx, o.cy - t.cy) < 24;
        const dx = Math.max(o.r.left - t.cx, 0, t.cx - o.r.right);
        const dy = Math.max(o.r.top - t.cy, 0, t.cy - o.r.bottom);
        return Math.hypot(dx, dy) < 12;
      });
      if (crowded) problems.push(`${describe(t.el)} is ${t.r.width.toFixed(1)}x${t.r.height.toFixed(1)} CSS px and its 24 px circle meets ${describe(crowded.el)}`);
    }
    return problems;
  }

  // --- 2.4.7 Focus Visible, 2.4.11 Focus Not Obscured, 1.4.11 for focus indicators --------------
  const LOOK = ["outlineStyle", "outlineWidth", "outlineColor", "boxShadow", "borderTopColor", "backgroundColor", "textDecorationLine"];
  const unfocused = new WeakMap();

  function look(el) {
    const style = getComputedStyle(el);
    return Object.fromEntries(LOOK.map((k) => [k, style[k]]));
  }

  function rememberUnfocused() {
    document.querySelectorAll(TARGETS).forEach((el) => unfocused.set(el, look(el)));
    return document.querySelectorAll(TARGETS).length;
  }

  function indicatorProblem(el) {
    const before = unfocused.get(el);
    const now = look(el);
    if (before && LOOK.every((k) => before[k] === now[k])) return "shows no focus indicator (same outline, shadow, border and background as unfocused)";
    if (now.outlineStyle !== "none" && parseFloat(now.outlineWidth) >= 1) {
      const offset = parseFloat(getComputedStyle(el).outlineOffset);
      const behind = offset < 0 ? backdrop(el) : backdrop(el.parentElement || el);
      const ratio = contrast(rgba(now.outlineColor), behind);
      if (ratio < 3) return `focus outline ${now.outlineColor} has ${ratio.toFixed(2)}:1 against its background (needs 3:1)`;
    }
    return null;
  }

  function obscuredProblem(el) {
    const r = el.getBoundingClientRect();
    const left = Math.max(r.left, 0), right = Math.min(r.right, innerWidth);
    const top = Math.max(r.top, 0), bottom = Math.min(r.bottom, innerHeight);
    if (right - left < 1 || bottom - top < 1) return "is outside the viewport when focused";
    const points = [[0.5, 0.5], [0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.9]].map(([fx, fy]) => [left + (right - left) * fx, top + (bottom - top) * fy]);
    const seen = points.some(([x, y]) => {
      const hit = document.elementFromPoint(x, y);
      return hit !== null && (hit === el || el.contains(hit) || hit.contains(el));
    });
    return seen ? null : `is hidden behind ${describe(document.elementFromPoint(...points[0]) || document.body)} when focused`;
  }

  // The walk starts at the top: focus the first control in document order (the next Shift+Tab
  // takes focus off the page, so the first Tab lands on it as a keyboard user's would).
  function focusFirst() {
    const first = [...document.querySelectorAll(TARGETS)].find((el) => el.tabIndex >= 0 && !el.disabled && (shown(el) || el.classList.contains("skip")));
    if (first) first.focus();
    return first ? describe(first) : null;
  }

  // One step of the keyboard walk: what has focus now and what is wrong with how it shows.
  function focusStep() {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return { at: null };
    const problem = indicatorProblem(el) || obscuredProblem(el);
    return { at: describe(el), key: el.id || describe(el), problem: problem ? `${describe(el)} ${problem}` : null };
  }

  // --- 1.4.11 Non-text Contrast: the boundary that shows where a field is ------------------------
  function fieldBorders() {
    const fields = [...document.querySelectorAll("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea")].filter(shown);
    return fields.flatMap((el) => {
      const style = getComputedStyle(el);
      const around = backdrop(el.parentElement || el);
      const border = parseFloat(style.borderTopWidth) > 0 && style.borderTopStyle !== "none" ? contrast(rgba(style.borderTopColor), around) : 0;
      const fill = contrast(backdrop(el), around);
      return Math.max(border, fill) >= 3 ? [] : [`${describe(el)} border ${style.borderTopColor} has ${border.toFixed(2)}:1 against ${JSON.stringify(around)} (needs 3:1)`];
    });
  }

  // --- 1.4.10 Reflow -----------------------------------------------------------------------------
  // Only data tables (and what scrolls inside its own box) may need a second dimension.
  function exempt(el) {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      if (node.tagName === "TABLE") return true;
      if (node !== el && ["auto", "scroll"].includes(getComputedStyle(node).overflowX)) return true;
    }
    return false;
  }

  function reflow() {
    const width = document.documentElement.clientWidth;
    const wide = [...document.body.querySelectorAll("*")].filter((el) => shown(el) && el.getBoundingClientRect().right > width + 1 && !exempt(el));
    // Name the outermost culprits: an element whose parent also sticks out is its parent's problem.
    const outermost = wide.filter((el) => !wide.includes(el.parentElement));
    const problems = outermost.map((el) => `${describe(el)} reaches ${el.getBoundingClientRect().right.toFixed(0)} px in a ${width} px viewport`);
    // A data table may scroll, in its own box: the page itself never scrolls sideways.
    const page = document.documentElement.scrollWidth;
    return page > width + 1 ? problems.concat([`the page scrolls sideways: ${page} px of content in a ${width} px viewport`]) : problems;
  }

  // --- 1.4.12 Text Spacing -----------------------------------------------------------------------
  // The W3C's text-spacing bookmarklet values, as a constructed style sheet (the pages' CSP allows
  // no inline <style>, and a constructed sheet is not inline markup).
  const SPACING = "* { line-height: 1.5 !important; letter-spacing: 0.12em !important; word-spacing: 0.16em !important; } p { margin-bottom: 2em !important; }";

  function applyTextSpacing() {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(SPACING);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    return getComputedStyle(document.body).letterSpacing;
  }

  function hasOwnText(el) {
    return [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  }

  function clipped() {
    const boxes = [...document.body.querySelectorAll("*")].filter((el) => shown(el) && !el.matches("input, select, textarea, progress, option"));
    return boxes.flatMap((el) => {
      const style = getComputedStyle(el);
      if (style.display.startsWith("inline") && style.display !== "inline-block") return [];
      const scrollsItself = (v) => v === "auto" || v === "scroll";
      const over = (el.scrollWidth > el.clientWidth + 1 && !scrollsItself(style.overflowX)) || (el.scrollHeight > el.clientHeight + 1 && !scrollsItself(style.overflowY));
      if (!over || exempt(el) && !hasOwnText(el)) return [];
      const how = style.overflowX === "visible" && style.overflowY === "visible" ? "spills out of its box" : "is clipped";
      return [`${describe(el)}: text ${how} (${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight})`];
    });
  }

  // --- 1.4.13 Content on Hover or Focus ----------------------------------------------------------
  // Style rules that show other content while something is hovered or focused (a CSS tooltip), and
  // scripted tooltips.
  function hoverContent() {
    const rules = [];
    for (const sheet of document.styleSheets) {
      for (const rule of sheet.cssRules) {
        const sel = rule.selectorText || "";
        if (/:(hover|focus)[\w-]*\s*[ >+~]\s*\S/.test(sel) && /display|visibility|opacity|content/.test(rule.style.cssText)) rules.push(`style rule "${sel}" reveals content on hover/focus`);
      }
    }
    const tips = [...document.querySelectorAll('[role="tooltip"]')].map((el) => `${describe(el)} is a tooltip`);
    return rules.concat(tips);
  }

  window.__wcag = { targetSize, rememberUnfocused, focusFirst, focusStep, fieldBorders, reflow, applyTextSpacing, clipped, hoverContent, describe };
})();
