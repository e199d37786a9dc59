"""Accessibility measured in a real page: axe-core's violations, and whether keyboard focus shows.

axe-core is the checked-in copy under tests/support/vendor/axe-core (see its README), injected
into the page under test, so every run applies the same rules with no network. A page passes when
no violation is of impact "serious" or "critical"; minor and moderate ones are reported, not
failed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map((v) => ({
    rule: v.id, impact: v.impact, help: v.help, help_url: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => (Array.isArray(t) ? t.join(' >>> ') : String(t))).join(' | '),
      summary: n.failureSummary || '',
    })),
  }));
}"""

# What draws the focus indicator of the focused control: the control itself; its <label> when the
# control is visually hidden (a styled file picker); or its parent when the control draws no ring
# and the parent draws one with :focus-within (the chat composer). A ring counts when it is the
# browser's own focus ring (outline-style auto), a visible outline of at least 2 px, or a
# box-shadow.
FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const ring = (node) => {
    const s = getComputedStyle(node);
    const color = s.outlineColor.match(/[\\d.]+/g) || [];
    const opaque = color.length < 4 || Number(color[3]) > 0;
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 && opaque;
    return s.outlineStyle === 'auto' || outline || s.boxShadow !== 'none';
  };
  const shown = (node) => {
    const box = node.getBoundingClientRect();
    const s = getComputedStyle(node);
    return box.width > 2 && box.height > 2 && s.visibility !== 'hidden' && Number(s.opacity) > 0;
  };
  const candidates = [['control', el]];
  for (const label of el.labels || []) candidates.push(['label', label]);
  if (el.parentElement && el.parentElement.matches(':focus-within')) {
    candidates.push(['parent', el.parentElement]);
  }
  const drawn = candidates.find(([, node]) => shown(node) && ring(node));
  const name = (el.getAttribute('aria-label') || el.textContent || el.value || '').trim();
  return {
    testid: el.dataset.testid || null,
    description: `<${el.tagName.toLowerCase()}> ${el.dataset.testid || ''} "${name.slice(0, 40)}"`,
    indicator: drawn ? drawn[0] : null,
  };
}"""


@dataclass(frozen=True)
class ViolatedNode:
    target: str
    summary: str


@dataclass(frozen=True)
class Violation:
    """One axe rule a page breaks, with every element that breaks it."""

    rule: str
    impact: str | None
    help: str
    help_url: str
    nodes: tuple[ViolatedNode, ...]

    @property
    def blocking(self) -> bool:
        return self.impact in BLOCKING_IMPACTS

    def describe(self) -> str:
        """The rule, its impact and help, then each element's selector and what axe found."""
        lines = [f"{self.rule} [{self.impact}] {self.help} ({self.help_url})"]
        for node in self.nodes:
            lines.append(f"    {node.target}")
            for detail in node.summary.splitlines()[1:]:
                if detail.strip():
                    lines.append(f"        {detail.strip()}")
        return "\n".join(lines)


@dataclass(frozen=True)
class FocusedControl:
    testid: str | None
    description: str
    indicator: str | None


def _violation(raw: dict[str, Any]) -> Violation:
    return Violation(
        rule=raw["rule"],
        impact=raw["impact"],
        help=raw["help"],
        help_url=raw["help_url"],
        nodes=tuple(ViolatedNode(n["target"], n["summary"]) for n in raw["nodes"]),
    )


def axe_violations(page: Page) -> list[Violation]:
    """Every axe violation of the page as it is now (axe is injected on first use per document)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    return [_violation(raw) for raw in page.evaluate(RUN_AXE)]


def assert_accessible(page: Page, where: str) -> list[Violation]:
    """Fails, listing each one, when the page has a serious or critical violation; returns the
    minor and moderate ones, which do not fail."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v.blocking]
    if blocking:
        listed = "\n".join(v.describe() for v in blocking)
        pytest.fail(
            f"{where}: {len(blocking)} serious or critical axe violation(s)\n{listed}",
            pytrace=False,
        )
    return violations


def focused_control(page: Page) -> FocusedControl | None:
    """The element that has keyboard focus and what draws its ring; None when nothing does."""
    found = page.evaluate(FOCUS_JS)
    return FocusedControl(**found) if found else None


def assert_focus_visible(page: Page) -> FocusedControl:
    """Fails unless a control has focus and a visible ring shows which one."""
    control = focused_control(page)
    assert control is not None, "no control has keyboard focus"
    assert control.indicator, f"keyboard focus on {control.description} shows no visible ring"
    return control
