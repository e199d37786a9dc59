"""The UI's own logic, run in the real browser on the modules the server ships: exactly-once event
ordering after a reconnect, the live timeline, the report (ranking, copy, export) and the charts.
The report here has no `answer` (a thread from before it existed); test_web_answers.py has the
answer card.

Events and the report follow PROTOCOL.md sections 3 and 4 to the letter; the server-driven versions
of these flows are in test_web_golden_path.py and test_web_runs.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import browser_page, watch
from tests.support.server import ServerProcess

RUN_ID = "run-7f3a"
THREAD_ID = "thread-91c2"
AGENTS = ["triage", "data", "optimization"]

REPORT: dict[str, Any] = {
    "period": {"from": "2026-10-23T00:00:00.000Z", "to": "2026-11-21T23:59:59.999Z"},
    "totals": {
        "requests": 48213,
        "cost_usd": 10412.37,
        "input_tokens": 61234567,
        "output_tokens": 9876543,
        "errors": 2411,
    },
    "by_model": [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "requests": 15000,
            "cost_usd": 310.42,
            "p50_latency_ms": 410,
            "p95_latency_ms": 1200,
        },
        {
            "provider": "openai",
            "model": "gpt-4o",
            "requests": 21000,
            "cost_usd": 6120.55,
            "p50_latency_ms": 820,
            "p95_latency_ms": 2400,
        },
    ],
    "recommendations": [
        {
            "id": "rec-cache",
            "kind": "prompt_caching",
            "title": "Cache exact duplicate prompts",
            "monthly_savings_usd": 812.4,
            "savings_pct": 7.8,
            "confidence": "high",
            "risk": "low",
            "traffic_share": 0.18,
            "evidence": {"duplicate_share": 0.18},
        },
        {
            "id": "rec-route",
            "kind": "model_routing",
            "title": "Route classification to gpt-4o-mini",
            "monthly_savings_usd": 2450.12,
            "savings_pct": 23.5,
            "confidence": 0.82,
            "risk": "medium",
            "traffic_share": 0.31,
            "evidence": {"feature": "classification"},
        },
        {
            "id": "rec-batch",
            "kind": "batch_api",
            "title": "Move the nightly job to the batch API",
            "monthly_savings_usd": 301.0,
            "savings_pct": 2.9,
            "confidence": "medium",
            "risk": "low",
            "traffic_share": 0.05,
            "evidence": {},
        },
    ],
    "actions": [
        {
            "recommendation_id": "rec-cache",
            "title": "Turn on the response cache",
            "steps": ["Enable the cache", "Watch the hit rate"],
            "config_snippet": "cache: true\nttl: 3600",
            "validation": "Hit rate above 15% after a day",
            "rollback": "cache: false",
        },
        {
            "recommendation_id": "rec-route",
            "title": "Add a LiteLLM routing rule",
            "steps": ["Add the rule", "Send 10% of traffic"],
            "config_snippet": (
                "router_settings:\n  routing_strategy: simple-shuffle\nmodel_list:\n"
                "  - model_name: classify\n    litellm_params:\n      model: gpt-4o-mini"
            ),
            "validation": ["Compare 200 labelled samples"],
            "rollback": ["Remove the rule"],
        },
    ],
    "markdown": "# Apex report\n\n1. Route classification to gpt-4o-mini: $2,450.12 a month\n",
}


def envelope(seq: int, type_: str, agent: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": type_,
        "event_id": f"ev-{seq}",
        "seq": seq,
        "run_id": RUN_ID,
        "thread_id": THREAD_ID,
        "user_id": "user-1",
        "agent_name": agent,
        "timestamp": f"2026-11-22T10:00:{seq:02d}.000Z",
        "payload": payload,
    }


def run_events() -> list[dict[str, Any]]:
    """A whole run in PROTOCOL order: supervisor, three agents each with a tool call, the final."""
    items: list[tuple[str, str, dict[str, Any]]] = [
        ("agent_started", "supervisor", {"task": "How can I cut my AI costs by 30%?"}),
        ("agent_thinking", "supervisor", {"thought": "Planning", "step": 1, "total_steps": 4}),
    ]
    for index, agent in enumerate(AGENTS):
        call = f"call-{agent}"
        status = "error" if agent == "optimization" else "ok"
        items += [
            ("agent_started", agent, {"task": f"{agent} task"}),
            ("agent_thinking", agent, {"thought": f"{agent} reads the request"}),
            (
                "tool_executing",
                agent,
                {
                    "tool_call_id": call,
                    "tool_name": f"{agent}_tool",
                    "arguments": {"period_days": 30, "agent": agent},
                },
            ),
            (
                "tool_completed",
                agent,
                {
                    "tool_call_id": call,
                    "tool_name": f"{agent}_tool",
                    "status": status,
                    "duration_ms": 40 + index,
                    "result_summary": f"{agent} summary",
                },
            ),
            (
                "agent_thinking",
                agent,
                {"thought": f"{agent} concludes", "step": 2, "total_steps": 2},
            ),
            ("agent_completed", agent, {"result_summary": f"{agent} done"}),
        ]
    items.append(
        (
            "agent_completed",
            "supervisor",
            {
                "final": True,
                "state": "completed",
                "final_response": "Route classification first.",
                "report": REPORT,
                "result_summary": "done",
            },
        )
    )
    return [envelope(i + 1, t, a, p) for i, (t, a, p) in enumerate(items)]


FEED_JS = """
async ({events, order}) => {
  const { RunRegistry } = await import('/js/runlog.js');
  const { RunView } = await import('/js/timeline.js');
  const registry = new RunRegistry();
  window.stopped = null;
  const view = new RunView({ runId: events[0].run_id, onStop: (id) => { window.stopped = id; } });
  const host = document.createElement('div');
  host.id = 'host';
  document.body.replaceChildren(host);
  host.append(view.element);
  const applied = [];
  const gaps = [];
  window.feed = (indexes) => {
    for (const index of indexes) {
      const event = events[index];
      const { ready, gap } = registry.ensure(event.run_id, event.thread_id).accept(event);
      for (const e of ready) { view.apply(e); applied.push(e.seq); }
      gaps.push(gap);
    }
    const live = registry.live().map((l) => [l.runId, l.lastSeq]);
    return { applied: [...applied], gaps: [...gaps], live };
  };
  return window.feed(order);
}
"""


@pytest.fixture
def page(browser: Browser, web_server: ServerProcess) -> Iterator[Page]:
    with browser_page(browser, accept_downloads=True) as page:
        page.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=web_server.base_url
        )
        problems = watch(page)
        page.goto(web_server.base_url + "/")
        page.get_by_test_id("login-form").wait_for()
        yield page
        assert problems.exceptions == []


def test_a_run_log_releases_each_seq_once_and_in_order(page: Page) -> None:
    result = page.evaluate("""async () => {
      const { RunLog } = await import('/js/runlog.js');
      const log = new RunLog('r');
      const e = (seq, final = false) =>
        ({ seq, run_id: 'r', payload: final ? { final: true } : {} });
      const steps = [[1], [2], [2], [4], [5], [3], [1], [6, true], [7]];
      return steps.map(([seq, final]) => {
        const { ready, gap } = log.accept(e(seq, final));
        return { ready: ready.map((x) => x.seq), gap, last: log.lastSeq, final: log.final };
      });
    }""")
    assert [step["ready"] for step in result] == [[1], [2], [], [], [], [3, 4, 5], [], [6], []]
    assert [step["gap"] for step in result] == [
        False,
        False,
        False,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert result[-1]["final"] is True and result[-1]["last"] == 6


def test_the_timeline_draws_every_event_once_across_a_reconnect_replay(page: Page) -> None:
    events = run_events()
    count = len(events)
    # Live until seq 9, the socket drops, the live tail (12, 13) arrives before the replay from
    # seq 7 (which repeats 7..9 and then brings 10..end), and a stale copy of seq 3 comes last.
    order = list(range(9)) + [11, 12] + list(range(6, count)) + [2]
    result = page.evaluate(FEED_JS, {"events": events, "order": order})
    assert result["applied"] == list(range(1, count + 1))
    assert True in result["gaps"], "the early live tail must be noticed as a gap"
    assert result["live"] == []

    run = page.get_by_test_id("run")
    expect(run).to_have_attribute("data-state", "completed")
    expect(run).to_have_attribute("data-event-count", str(count))
    expect(run).to_have_attribute("data-last-seq", str(count))
    assert set(run.get_attribute("data-event-types").split()) == {
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    }

    cards = page.get_by_test_id("agent-card")
    assert [cards.nth(i).get_attribute("data-agent") for i in range(cards.count())] == [
        "supervisor",
        *AGENTS,
    ]
    thinking = page.get_by_test_id("thinking-line")
    expected_seqs = [str(e["seq"]) for e in events if e["type"] == "agent_thinking"]
    assert [
        thinking.nth(i).get_attribute("data-seq") for i in range(thinking.count())
    ] == expected_seqs
    for agent in AGENTS:
        card = page.locator(f"[data-testid=agent-card][data-agent={agent}]")
        expect(card).to_have_attribute("data-status", "completed")
        expect(card.get_by_test_id("thinking-line")).to_have_count(2)
        chip = card.get_by_test_id("tool-chip")
        expect(chip).to_have_count(1)
        expect(chip).to_have_attribute("data-tool", f"{agent}_tool")
        assert '"period_days": 30' in (chip.get_attribute("title") or "")
        assert chip.get_attribute("data-executing-seq") and chip.get_attribute("data-completed-seq")
    expect(page.locator("[data-agent=data] [data-testid=tool-chip]")).to_have_attribute(
        "data-status", "ok"
    )
    expect(page.locator("[data-agent=data] [data-testid=tool-chip]")).to_contain_text("41 ms")
    expect(page.locator("[data-agent=optimization] [data-testid=tool-chip]")).to_have_attribute(
        "data-status", "error"
    )
    # The report shows the answer; the final response (its Markdown) is not shown a second time.
    expect(page.get_by_test_id("report")).to_be_visible()
    expect(page.get_by_test_id("final-response")).to_have_count(0)
    expect(page.get_by_test_id("stop-run")).to_have_count(0)


def test_tool_arguments_show_on_hover_and_from_the_keyboard(page: Page) -> None:
    page.evaluate(FEED_JS, {"events": run_events()[:6], "order": list(range(6))})
    chip = page.get_by_test_id("tool-chip")
    expect(chip).to_have_attribute("data-status", "ok")
    tip = chip.get_by_role("tooltip")
    expect(tip).to_be_hidden()
    chip.focus()
    page.keyboard.press("Enter")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text('"agent": "triage"')
    expect(tip).to_contain_text("result: triage summary")
    assert chip.get_attribute("aria-describedby") == tip.get_attribute("id")


def test_the_stop_button_asks_once_and_the_stopped_event_ends_the_run(page: Page) -> None:
    stopped = envelope(5, "agent_stopped", "supervisor", {"final": True, "state": "cancelled"})
    page.evaluate(FEED_JS, {"events": [*run_events()[:4], stopped], "order": list(range(4))})
    stop = page.get_by_test_id("stop-run")
    expect(stop).to_be_enabled()
    stop.click()
    assert page.evaluate("window.stopped") == RUN_ID
    expect(stop).to_be_disabled()
    expect(stop).to_have_text("Stopping…")
    result = page.evaluate("window.feed([4])")
    assert result["applied"] == [1, 2, 3, 4, 5]
    expect(page.get_by_test_id("run")).to_have_attribute("data-state", "cancelled")
    expect(page.get_by_test_id("run-status")).to_have_text("Stopped")
    expect(page.get_by_test_id("stop-run")).to_have_count(0)
    expect(page.locator("[data-agent=triage]")).to_have_attribute("data-status", "stopped")


RENDER_REPORT_JS = """
async (report) => {
  const { renderReport } = await import('/js/report.js');
  document.body.replaceChildren(renderReport(report));
}
"""


def test_the_report_ranks_recommendations_by_savings(page: Page) -> None:
    page.evaluate(RENDER_REPORT_JS, REPORT)
    rows = page.get_by_test_id("recommendation-row")
    expect(rows).to_have_count(3)
    savings = [float(rows.nth(i).get_attribute("data-savings") or "nan") for i in range(3)]
    assert savings == [2450.12, 812.4, 301.0]
    expect(rows.nth(0)).to_contain_text("Route classification to gpt-4o-mini")
    expect(rows.nth(0).get_by_test_id("recommendation-savings")).to_have_text("$2,450.12")
    expect(page.get_by_test_id("total-cost")).to_contain_text("$10,412.37")
    expect(page.get_by_test_id("total-requests")).to_contain_text("48,213")
    expect(page.get_by_test_id("report-period")).to_have_text("2026-10-23 → 2026-11-21")
    actions = page.get_by_test_id("action")
    expect(actions.nth(0)).to_contain_text("Add a LiteLLM routing rule")
    expect(actions.nth(1)).to_contain_text("Turn on the response cache")


def test_config_snippets_copy_to_the_clipboard(page: Page) -> None:
    page.evaluate(RENDER_REPORT_JS, REPORT)
    expect(page.get_by_test_id("action-plan")).to_be_hidden()
    page.get_by_test_id("action-plan-toggle").click()
    button = page.get_by_test_id("action").nth(0).get_by_test_id("copy-snippet")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == REPORT["actions"][1]["config_snippet"]


def test_the_report_exports_as_markdown_and_json(page: Page, tmp_path: Path) -> None:
    page.evaluate(RENDER_REPORT_JS, REPORT)
    with page.expect_download() as markdown:
        page.get_by_test_id("export-markdown").click()
    assert markdown.value.suggested_filename == "apex-report-2026-11-21.md"
    markdown.value.save_as(tmp_path / "report.md")
    assert (tmp_path / "report.md").read_text() == REPORT["markdown"]
    with page.expect_download() as exported:
        page.get_by_test_id("export-json").click()
    assert exported.value.suggested_filename == "apex-report-2026-11-21.json"
    exported.value.save_as(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text()) == REPORT


def test_a_report_without_data_shows_the_guidance(page: Page) -> None:
    guidance = {
        "period": None,
        "totals": {
            "requests": 0,
            "cost_usd": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "errors": 0,
        },
        "by_model": [],
        "recommendations": [],
        "actions": [],
        "markdown": "Upload a CSV with timestamp, model, input_tokens and output_tokens.",
    }
    page.evaluate(RENDER_REPORT_JS, guidance)
    expect(page.get_by_test_id("report")).to_have_attribute("data-guidance", "true")
    expect(page.get_by_test_id("answer-prose")).to_have_text(guidance["markdown"])
    expect(page.get_by_test_id("recommendations")).to_have_count(0)


def test_charts_draw_one_point_per_day_and_one_bar_per_model(page: Page) -> None:
    result = page.evaluate("""async () => {
      const { lineChart, barChart, niceScale } = await import('/js/charts.js');
      const day = (i) => `2026-11-${String(i + 1).padStart(2, '0')}`;
      const points = Array.from({length: 30}, (_, i) => ({ label: day(i), value: 100 + i }));
      const common = { width: 360, valueFormat: String };
      const line = lineChart({ ...common, points, title: 'Spend', testid: 'line' });
      const items = [{label: 'a', value: 1}, {label: 'b', value: 5}];
      const bars = barChart({ ...common, items, title: 'By model', testid: 'bars' });
      const empty = lineChart({ ...common, points: [], title: 'Spend', testid: 'none' });
      document.body.replaceChildren(line, bars, empty);
      return { scale: niceScale(129), svgWidth: line.querySelector('svg').getAttribute('width') };
    }""")
    expect(page.get_by_test_id("line-point")).to_have_count(30)
    assert page.get_by_test_id("line-line").get_attribute("d").count("L") == 29
    assert [
        page.get_by_test_id("bars-bar").nth(i).get_attribute("data-label") for i in range(2)
    ] == ["b", "a"]
    expect(page.get_by_test_id("none-empty")).to_have_text("No data in this period.")
    assert page.get_by_role("img", name="Spend").count() == 1
    assert result["scale"] == {"max": 200, "step": 50}
    assert result["svgWidth"] == "360"


def test_relative_times_and_money_read_naturally(page: Page) -> None:
    result = page.evaluate("""async () => {
      const f = await import('/js/format.js');
      const now = Date.parse('2026-11-22T12:00:00Z');
      const ago = (iso) => f.relativeTime(iso, now);
      return [ago('2026-11-22T11:59:50Z'), ago('2026-11-22T11:55:00Z'),
              ago('2026-11-22T09:00:00Z'), ago('2026-11-21T10:00:00Z'),
              f.usd(1234.5), f.usd(0.0042), f.share(0.31), f.percent(23.5), f.milliseconds(2400)];
    }""")
    assert result == [
        "just now",
        "5 minutes ago",
        "3 hours ago",
        "yesterday",
        "$1,234.50",
        "$0.0042",
        "31%",
        "24%",
        "2,400 ms",
    ]
