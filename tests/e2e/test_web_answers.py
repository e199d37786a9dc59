"""The chat's answers in a real browser against a real server: the answer to the question comes
first (headline, every figure, the answer's table, the question as understood, unknown names),
everything else once and collapsed; Markdown rendered, never raw and never able to run script,
whatever the question or the uploaded rows hold; every table readable on a 375 px phone; and a
new chat without data offers upload and demo data before any example question.

Expected texts are computed here from the report the server returned, by the answer card's
formatting rules written out in this file (money `$1,234.56`, percentages to two decimals, one
latency unit per column, Yes/No, "—")."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.browser import api_get, ask, browser_page, register, screenshot, watch
from tests.support.server import ServerProcess

QUESTIONS = [
    "How can I cut my AI costs by 30%?",
    "How much did we spend last week?",
    "Which model costs the most?",
    "What would moving summarization from claude-sonnet-4 to claude-haiku-4-5 save?",
    "Compare gpt-4o and claude-sonnet-4",
    "What will we spend next month?",
    "We have $5k a month, do we fit?",
    "Why is p95 high on chat?",
    "Why are so many mistral calls failing?",
    "Is prompt caching worth it?",
    "How much did gpt-7-ultra cost?",
]
SCOPE_ORDER = ["models", "target_models", "providers", "features"]
RAW_MARKDOWN = ["|---", "**", "```", "*Understood as", "## "]
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "[click me](javascript:alert(3))",
    '<a href="javascript:alert(4)">link</a>',
    "<svg onload=alert(5)>",
]


# ---------- the formatting rules, written out independently of the page's code ----------


def _grouped(amount: Decimal, places: int) -> str:
    text = f"{amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money(value: float) -> str:
    text = f"${abs(Decimal(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    return f"-{text}" if value < 0 else text


def percent_of(fraction: float) -> str:
    """A 0-1 fraction as a percentage with at most two decimals."""
    return f"{_grouped(Decimal(fraction) * 100, 2)}%"


def seconds_or_ms(value: float, unit: str) -> str:
    if unit == "s":
        return f"{Decimal(value / 1000).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"
    return f"{Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"


def latency_unit(values: list[Any]) -> str:
    return "s" if any(isinstance(v, (int, float)) and v >= 10_000 for v in values) else "ms"


def value_text(name: str, value: Any) -> str:
    """A figure or a table cell as the answer card shows it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        return value.capitalize() if name == "dimension" else value
    if name.endswith("_usd"):
        return money(value)
    if name.endswith("_pct"):
        return percent_of(value / 100)
    if name in ("share", "error_rate") or name.endswith(("_share", "_rate")):
        return percent_of(value)
    if name.endswith("_ms"):
        unit = latency_unit([value])
        return f"{seconds_or_ms(value, unit)} {unit}"
    return _grouped(Decimal(value), 2)


# ---------- helpers ----------


def load_demo_from_chat(page: Page) -> None:
    """A new chat without data → "Load demo data", waiting for the example questions."""
    page.get_by_test_id("nav-chat").click()
    page.get_by_test_id("chat-load-demo").click()
    expect(page.get_by_test_id("example-question").first).to_be_visible(timeout=120_000)


def completed_report(page: Page, run: Locator) -> dict[str, Any]:
    expect(run).to_have_attribute("data-state", "completed", timeout=60_000)
    body = api_get(page, f"/api/runs/{run.get_attribute('data-run-id')}")["body"]
    return body["report"]


def texts(locator: Locator) -> list[str]:
    return [text.strip() for text in locator.all_inner_texts()]


def open_every_section(page: Page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")


def upload_csv(page: Page, rows: list[dict[str, Any]], name: str = "calls.csv") -> dict[str, Any]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    answer = page.evaluate(
        """async ({text, name}) => {
            const token = JSON.parse(localStorage.getItem('apex.session')).access_token;
            const form = new FormData();
            form.append('file', new Blob([text], {type: 'text/csv'}), name);
            const response = await fetch('/api/usage/uploads', {
              method: 'POST', body: form, headers: {Authorization: `Bearer ${token}`}});
            return {status: response.status, body: await response.json()};
        }""",
        {"text": buffer.getvalue(), "name": name},
    )
    assert answer["status"] == 200, answer
    assert answer["body"]["rows_accepted"] == len(rows), answer["body"]
    return answer["body"]


def calls(models: list[str], features: list[str], count: int) -> list[dict[str, Any]]:
    """`count` priced calls per (model, feature), an hour apart, ending an hour ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for m, model in enumerate(models):
        for f, feature in enumerate(features):
            for i in range(count):
                rows.append(
                    {
                        "timestamp": (now - timedelta(hours=1 + i, minutes=m * 7 + f)).isoformat(),
                        "provider": "openai",
                        "model": model,
                        "input_tokens": 1000 + 10 * i,
                        "output_tokens": 100 + i,
                        "cost_usd": f"{0.01 * (1 + m + f):.4f}",
                        "latency_ms": 900 + 50 * i,
                        "status": "ok",
                        "feature": feature,
                    }
                )
    return rows


def assert_answer_card(report_view: Locator, report: dict[str, Any]) -> None:
    """The answer card shows the report's answer and question, and comes first."""
    answer, question = report["answer"], report["question"]
    card = report_view.get_by_test_id("answer")
    assert report_view.evaluate("el => el.firstElementChild.dataset.testid") == "answer"
    expect(card.get_by_test_id("answer-headline")).to_have_text(answer["headline"])
    expect(card).to_be_visible()

    tiles = card.get_by_test_id("answer-figure")
    expect(tiles).to_have_count(len(answer["figures"]))
    assert [tiles.nth(i).get_attribute("data-figure") for i in range(tiles.count())] == list(
        answer["figures"]
    )
    assert texts(tiles.locator("dd")) == [
        value_text(name, value) for name, value in answer["figures"].items()
    ]

    table = card.get_by_test_id("answer-table")
    if answer["table"]:
        columns = list(answer["table"][0])
        units = {
            c: latency_unit([row[c] for row in answer["table"]])
            for c in columns
            if c.endswith("_ms")
        }
        headers = texts(table.locator("thead th"))
        assert len(headers) == len(columns)
        for column, header in zip(columns, headers, strict=True):
            if column in units:
                assert header.endswith(f"({units[column]})"), header
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(len(answer["table"]))
        for i, row in enumerate(answer["table"]):
            assert texts(rows.nth(i).locator("th, td")) == [
                seconds_or_ms(row[c], units[c])
                if c in units and row[c] is not None
                else value_text(c, row[c])
                for c in columns
            ]
    else:
        expect(table).to_have_count(0)

    chips = card.get_by_test_id("scope-chip")
    assert texts(chips) == [name for key in SCOPE_ORDER for name in question[key]]
    unknown = card.get_by_test_id("unknown-names")
    if question["unknown"]:
        expect(unknown).to_be_visible()
        for name in question["unknown"]:
            expect(unknown).to_contain_text(name)
    else:
        expect(unknown).to_have_count(0)


def assert_shown_once(container: Locator, report: dict[str, Any]) -> None:
    """The headline once, no raw Markdown, and everything after the answer collapsed."""
    shown = container.inner_text()
    assert shown.count(report["answer"]["headline"]) == 1, shown[:400]
    for mark in RAW_MARKDOWN:
        assert mark not in shown, f"raw Markdown {mark!r} shown"
    assert container.locator("details[open]").count() == 0
    final = container.get_by_test_id("final-response")
    assert final.count() == 0 or not final.is_visible()


INJECTED_JS = """() => {
    const all = [...document.body.querySelectorAll('*')];
    return {
      elements: document.body.querySelectorAll('img, script, iframe, object, embed').length,
      handlers: all.filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name)))
        .map((el) => el.outerHTML.slice(0, 80)),
      links: [...document.body.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'))
        .filter((href) => !/^(https?:|#|mailto:)/i.test(href)),
      svgs: [...document.body.querySelectorAll('svg')]
        .filter((svg) => !svg.matches('.icon, .logo')).length,
    };
}"""


APPEND_REPORT_JS = """async (report) => {
    const { renderReport } = await import('/js/report.js');
    const host = document.createElement('div');
    host.id = 'older';
    host.append(renderReport(report));
    document.getElementById('older')?.remove();
    document.body.append(host);
    await new Promise((resolve) => setTimeout(resolve, 100));
}"""


def assert_nothing_injected(page: Page) -> None:
    """No element, handler or link came from the names or the question: they are text."""
    assert page.evaluate(INJECTED_JS) == {"elements": 0, "handlers": [], "links": [], "svgs": 0}


# ---------- the tests ----------


def test_a_new_chat_offers_upload_and_demo_data_before_example_questions(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        register(page, web_server.base_url)
        page.get_by_test_id("nav-chat").click()
        expect(page.get_by_test_id("no-data")).to_be_visible()
        expect(page.get_by_test_id("example-question")).to_have_count(0)
        expect(page.get_by_test_id("chat-upload")).to_have_text("Upload usage")
        page.get_by_test_id("chat-upload").click()
        page.wait_for_url("**/#/usage")

        page.get_by_test_id("nav-chat").click()
        with page.expect_request(
            lambda r: r.url.endswith("/api/usage/demo") and r.method == "POST"
        ) as demo:
            page.get_by_test_id("chat-load-demo").click()
        assert demo.value.post_data_json == {}
        expect(page.get_by_test_id("example-question").first).to_be_visible(timeout=120_000)
        expect(page.get_by_test_id("no-data")).to_have_count(0)
        assert api_get(page, "/api/usage/summary")["body"]["totals"]["requests"] > 0

        page.reload()
        expect(page.get_by_test_id("example-question").first).to_be_visible()
        expect(page.get_by_test_id("no-data")).to_have_count(0)
        assert problems.exceptions == []


def test_every_answer_comes_first_with_its_figures_and_shows_each_part_once(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser, viewport={"width": 1280, "height": 800}) as page:
        problems = watch(page)
        register(page, web_server.base_url)
        load_demo_from_chat(page)
        intents = set()
        for question in QUESTIONS:
            ask(page, question)
            run = page.get_by_test_id("run").last
            report = completed_report(page, run)
            intents.add(report["question"]["intent"])
            view = run.get_by_test_id("report")
            assert_answer_card(view, report)
            assert_shown_once(view, report)
            if report["question"]["intent"] == "compare":
                view.evaluate("el => el.scrollIntoView({block: 'start'})")
                screenshot(page, "answer-compare-1280")

            page.reload()
            stored = page.get_by_test_id("assistant-message").last
            assert_answer_card(stored.get_by_test_id("report"), report)
            assert_shown_once(stored, report)
        assert {
            "cost_reduction",
            "spend",
            "breakdown",
            "what_if",
            "compare",
            "forecast",
            "budget",
            "latency",
            "reliability",
            "caching",
        } <= intents
        assert problems.exceptions == []


def test_hostile_names_in_rows_and_questions_never_run_script(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        register(page, web_server.base_url)
        upload_csv(page, calls(HOSTILE, HOSTILE, 3), name="<img src=x onerror=alert(9)>.csv")
        summary = api_get(page, "/api/usage/summary")["body"]
        stored_features = {row["feature"] for row in summary["by_feature"]}
        stored_models = {row["model"] for row in summary["by_model"]}
        assert stored_features == set(HOSTILE) and stored_models == set(HOSTILE)

        questions = [
            "Which feature costs the most?",
            "Which model costs the most?",
            f"How much did {HOSTILE[0]} cost on {HOSTILE[1]}? {HOSTILE[2]} {HOSTILE[3]}",
        ]
        tables = 0
        for question in questions:
            ask(page, question)
            run = page.get_by_test_id("run").last
            report = completed_report(page, run)
            expect(page.get_by_test_id("user-message").last.locator(".text")).to_have_text(question)
            if report["answer"]["table"]:
                tables += 1
                names = texts(run.get_by_test_id("answer-table").locator("tbody th"))
                assert sorted(names) == sorted(row["key"] for row in report["answer"]["table"])
                assert set(names) == (
                    stored_models
                    if report["answer"]["figures"]["dimension"] == "model"
                    else stored_features
                )
            open_every_section(page)
            assert_nothing_injected(page)
            page.reload()
            page.get_by_test_id("assistant-message").last.wait_for()
            open_every_section(page)
            assert_nothing_injected(page)
            # The same report as a thread from before `answer` shows it: its Markdown rendered.
            older = {k: v for k, v in report.items() if k not in ("question", "answer")}
            page.evaluate(APPEND_REPORT_JS, older)
            expect(page.locator("#older [data-testid=answer-prose]")).to_contain_text(
                report["answer"]["headline"]
            )
            assert_nothing_injected(page)
        assert tables == 2
        assert dialogs == []
        assert problems.exceptions == []


MARKDOWN_JS = """
async (text) => {
  const { renderMarkdown } = await import('/js/markdown.js');
  window.markdownRan = false;
  const node = renderMarkdown(text, { testid: 'rendered' });
  document.body.replaceChildren(node);
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    html: node.innerHTML,
    text: node.textContent,
    tags: [...node.querySelectorAll('*')].map((el) => el.tagName.toLowerCase()),
    handlers: [...node.querySelectorAll('*')]
      .filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name))).length,
    hrefs: [...node.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    ran: window.markdownRan,
  };
}
"""


def test_markdown_renders_as_elements_and_hostile_html_as_text(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(web_server.base_url + "/")
        page.get_by_test_id("login-form").wait_for()
        hostile = (
            'Hi <img src=x onerror="window.markdownRan=true"> '
            "<script>window.markdownRan=true</script>\n\n"
            "[a](javascript:window.markdownRan=true) [b](https://example.com/docs)\n\n"
            "![pixel](https://example.com/p.png)\n\n"
            '<iframe src="javascript:window.markdownRan=true"></iframe>'
        )
        result = page.evaluate(MARKDOWN_JS, hostile)
        assert result["ran"] is False and dialogs == []
        assert not {"img", "script", "iframe"} & set(result["tags"])
        assert result["handlers"] == 0
        assert result["hrefs"] == [None, "https://example.com/docs"]
        assert "<img src=x" in result["text"] and "<script>" in result["text"]

        rich = "# Title\n\n**bold** and `code`\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n1. one\n"
        result = page.evaluate(MARKDOWN_JS, rich)
        assert {"h1", "strong", "code", "table", "ol"} <= set(result["tags"])
        assert "#" not in result["text"] and "**" not in result["text"]
        assert page.locator("[data-testid=rendered] .table-wrap > table").count() == 1


RENDER_REPORT_JS = """
async (report) => {
  const { renderReport } = await import('/js/report.js');
  document.body.replaceChildren(renderReport(report));
}
"""

FIGURES_REPORT: dict[str, Any] = {
    "question": {
        "intent": "budget",
        "language": "en",
        "period": {"from": "2026-10-01T00:00:00.000Z", "to": "2026-11-01T00:00:00.000Z"},
        "models": ["gpt-4o"],
        "target_models": ["gpt-4o-mini"],
        "features": ["classify"],
        "providers": ["openai"],
        "target_pct": 30.0,
        "budget_usd": 5000.0,
        "unknown": ["gpt-7-ultra"],
    },
    "answer": {
        "headline": "Your run rate is $1,234.56 a month against a budget of $5,000.00.",
        "figures": {
            "budget_usd": 5000.0,
            "current_monthly_usd": 1234.56,
            "after_recommendations_monthly_usd": 0.5,
            "fits": True,
            "meets_target": False,
            "target_pct": 39.1,
            "error_rate": 0.164,
            "p50_latency_ms": 4341.6,
            "p95_latency_ms": 15230.4,
            "requests": 50000,
            "low_usd": None,
        },
        "table": [
            {
                "model": "gpt-4o",
                "requests": 12611,
                "cost_usd": 64.09,
                "p95_latency_ms": 3152.7,
                "error_rate": 0.0432,
            },
            {
                "model": "claude-sonnet-4",
                "requests": 14059,
                "cost_usd": 221.7,
                "p95_latency_ms": 19383.8,
                "error_rate": 0.0487,
            },
        ],
    },
    "period": {"from": "2026-10-01T00:00:00.000Z", "to": "2026-11-01T00:00:00.000Z"},
    "totals": {
        "requests": 50000,
        "cost_usd": 1234.56,
        "input_tokens": 1,
        "output_tokens": 1,
        "errors": 0,
    },
    "by_model": [
        {
            "provider": "openai",
            "model": "gpt-4o",
            "requests": 12611,
            "cost_usd": 64.09,
            "p50_latency_ms": 452.0,
            "p95_latency_ms": 3152.7,
        },
        {
            "provider": "anthropic",
            "model": "claude-sonnet-4",
            "requests": 14059,
            "cost_usd": 221.7,
            "p50_latency_ms": 5602.0,
            "p95_latency_ms": 19383.8,
        },
    ],
    "recommendations": [
        {
            "id": "r1",
            "kind": "latency",
            "title": "Cut the slow tail",
            "monthly_savings_usd": 0.0,
            "savings_pct": 0.0,
            "confidence": 0.9,
            "risk": "low",
            "traffic_share": 0.15,
            "evidence": {
                "p99_latency_ms": 124687.5,
                "model": "claude-sonnet-4",
                "acts_on": [{"model": "claude-sonnet-4", "cost_usd": 147.74}],
            },
        },
    ],
    "actions": [],
    "markdown": (
        "Your run rate is $1,234.56 a month against a budget of $5,000.00.\n\n"
        "*Understood as: budget.*\n\n| figure | value |\n|---|---:|\n| budget usd | 5,000.00 |"
        "\n\nThe **prose** stays.\n\n## Recommendations\n\n| # | recommendation |\n|---|---|"
        "\n| 1 | Cut the slow tail |"
    ),
}


def test_figures_tables_and_evidence_are_formatted_by_their_names(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        page.goto(web_server.base_url + "/")
        page.get_by_test_id("login-form").wait_for()
        page.evaluate(RENDER_REPORT_JS, FIGURES_REPORT)
        report_view = page.get_by_test_id("report")
        assert_answer_card(report_view, FIGURES_REPORT)
        tiles = texts(page.get_by_test_id("answer-figure").locator("dd"))
        assert tiles == [
            "$5,000.00",
            "$1,234.56",
            "$0.50",
            "Yes",
            "No",
            "39.1%",
            "16.4%",
            "4,342 ms",
            "15.2 s",
            "50,000",
            "—",
        ]
        assert texts(page.get_by_test_id("answer-table").locator("thead th"))[3] == (
            "p95 latency (s)"
        )
        expect(page.get_by_test_id("question-understood")).to_contain_text("Target: 30%")
        expect(page.get_by_test_id("question-understood")).to_contain_text(
            "Budget: $5,000.00 / month"
        )
        expect(page.get_by_test_id("answer-prose")).to_have_text("The prose stays.")
        expect(page.locator("[data-testid=answer-prose] strong")).to_have_text("prose")

        open_every_section(page)
        by_model = page.get_by_test_id("report-by-model")
        assert texts(by_model.locator("thead th")) == [
            "Model",
            "Provider",
            "Requests",
            "Spend",
            "p50 (ms)",
            "p95 (s)",
        ]
        assert texts(by_model.locator("tbody tr").first.locator("th, td")) == [
            "claude-sonnet-4",
            "anthropic",
            "14,059",
            "$221.70",
            "5,602",
            "19.4",
        ]
        evidence = page.get_by_test_id("evidence")
        expect(evidence.locator("dt").first).to_have_text("p99 latency")
        expect(evidence.locator("dd").first).to_have_text("124.7 s")
        expect(evidence.locator("pre")).to_have_count(0)
        expect(evidence.locator("table td")).to_have_text(["$147.74"])
        assert problems.exceptions == []


def test_a_report_from_before_answers_shows_its_markdown_rendered(
    browser: Browser, web_server: ServerProcess
) -> None:
    older = {
        key: value for key, value in FIGURES_REPORT.items() if key not in ("question", "answer")
    }
    older["markdown"] = (
        "*Understood as a budget question*\n\nYou are **within** budget.\n\n"
        "## Recommendations\n\n| # | recommendation |\n|---|---|\n| 1 | Cut the slow tail |"
    )
    with browser_page(browser) as page:
        page.goto(web_server.base_url + "/")
        page.get_by_test_id("login-form").wait_for()
        page.evaluate(RENDER_REPORT_JS, older)
        expect(page.get_by_test_id("answer")).to_have_count(0)
        prose = page.get_by_test_id("answer-prose")
        expect(prose.locator("p")).to_have_text(
            ["Understood as a budget question", "You are within budget."]
        )
        expect(prose.locator("em")).to_have_text("Understood as a budget question")
        expect(page.get_by_test_id("recommendation-row")).to_have_count(1)
        assert "|---" not in page.get_by_test_id("report").inner_text()


CELLS_JS = """
() => {
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
    && el.scrollWidth > el.clientWidth;
  // the nearest box that clips the cell; the page's own scrolling area does not count
  const container = (cell) => {
    for (let el = cell.parentElement; el && !el.matches('main, body'); el = el.parentElement) {
      if (getComputedStyle(el).overflowX !== 'visible') return el;
    }
    return null;
  };
  const problems = [];
  let checked = 0;
  for (const cell of document.querySelectorAll('#app th, #app td')) {
    const box = cell.getBoundingClientRect();
    if (!box.width && !box.height) continue;
    checked += 1;
    const holder = container(cell);
    const left = holder ? holder.getBoundingClientRect().left + holder.clientLeft : 0;
    const right = holder ? left + holder.clientWidth : window.innerWidth;
    const inside = box.left >= left - 1 && box.right <= right + 1;
    const clippedText = cell.scrollWidth > cell.clientWidth + 1;
    if (clippedText || (!inside && !(holder && scrolls(holder)))) {
      problems.push(`${cell.textContent.slice(0, 40)} [${Math.round(box.left)}, `
        + `${Math.round(box.right)}] in [${Math.round(left)}, ${Math.round(right)}]`);
    }
  }
  return { checked, problems };
}
"""


def test_every_table_cell_is_readable_on_a_375_px_phone(
    browser: Browser, web_server: ServerProcess
) -> None:
    long_model = "ft:gpt-4o-mini-2024-07-18:my-organisation:support-triage-experiment:9xYzAbCd"
    with browser_page(
        browser, viewport={"width": 375, "height": 800}, is_mobile=True, has_touch=True
    ) as page:
        problems = watch(page)
        register(page, web_server.base_url)
        load_demo_from_chat(page)
        upload_csv(page, calls([long_model], ["support-triage"], 60))
        for question in [
            "How can I cut my AI costs by 30%?",
            "Compare gpt-4o and claude-sonnet-4",
            "Why is p95 high on chat?",
            "Which model costs the most?",
        ]:
            ask(page, question)
            completed_report(page, page.get_by_test_id("run").last)
            open_every_section(page)
            result = page.evaluate(CELLS_JS)
            assert result["checked"] > 0
            assert result["problems"] == [], result["problems"][:5]
            main_width = page.evaluate(
                "[document.querySelector('main').scrollWidth, "
                "document.querySelector('main').clientWidth]"
            )
            assert main_width[0] <= main_width[1]
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
        names = page.locator("[data-testid=answer-table] tbody th", has_text=long_model)
        expect(names).to_have_text(long_model)
        page.get_by_test_id("run").last.get_by_test_id("report").evaluate(
            "el => el.scrollIntoView({block: 'start'})"
        )
        screenshot(page, "answer-375")
        assert problems.exceptions == []
