"""The usage page in a real browser against a real server: with data it opens on the figures and
charts, without data on the upload and demo panels; a file dropped on the page uploads with
progress and lists its rejected lines; the dashboard follows the date range; every table reads
whole at 375 px."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    api_get,
    api_upload,
    browser_page,
    load_demo_data,
    register,
    screenshot,
)
from tests.support.server import ServerProcess

HEADER = "timestamp,provider,model,input_tokens,output_tokens,cost_usd,latency_ms,status,feature\n"
GOOD = "2026-11-01T10:0{minute}:00Z,openai,gpt-4o-mini,1200,300,0.0012,820,ok,chat\n"
BAD_FILE = (
    HEADER  # line 1
    + GOOD.format(minute=0)  # line 2
    # line 3: a negative token count
    + "2026-11-01T10:01:00Z,openai,gpt-4o-mini,-5,300,0.0012,820,ok,chat\n"
    + GOOD.format(minute=2)  # line 4
    + "not a time,openai,gpt-4o-mini,900,200,0.0009,640,ok,chat\n"  # line 5: timestamp
    + "2026-11-01T10:04:00Z,openai,gpt-4o-mini,many,200,0.0009,640,ok,chat\n"  # line 6: tokens
    + GOOD.format(minute=5)  # line 7
)
BAD_LINES = ["3", "5", "6"]

DROP_FILE_JS = """([name, text]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, {type: 'text/csv'}));
  return transfer;
}"""


def reopen_usage(page: Page) -> None:
    """Away to the chat and back: the usage page as it opens for someone who has data."""
    page.get_by_test_id("nav-chat").click()
    page.get_by_test_id("nav-usage").click()
    page.get_by_test_id("dashboard-totals").wait_for()


def latency_text(value: float, unit: str) -> str:
    """A latency as the page writes it in a column of that unit: whole milliseconds, or seconds
    to one decimal (rounded half up, the browser rounding the shortest decimal of the double)."""
    if unit == "s":
        seconds = Decimal(repr(value / 1000)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        return f"{seconds:,}"
    return f"{int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP)):,}"


def in_viewport(page: Page, testid: str) -> bool:
    box = page.get_by_test_id(testid).first.bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None
    return box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


STACKS_JS = """() => [...document.querySelectorAll('[data-testid=chart-spend-by-day-point]')]
  .map((day) => {
    const segments = [...day.querySelectorAll('[data-testid=chart-spend-by-day-segment]')];
    return {day: day.dataset.day,
            values: segments.map((s) => Number(s.dataset.value)),
            height: segments.reduce((sum, s) => sum + s.getBBox().height, 0)};
  })"""

# every table cell on the page, and whether it can be read whole: inside its scroll container's
# box, or in a container that scrolls sideways (and is then a named stop in the tab order); a
# cell must not clip its text either
CLIPPED_CELLS_JS = """async () => {
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const problems = [];
  const cells = document.querySelectorAll('[data-testid=usage] td, [data-testid=usage] th');
  for (const cell of cells) {
    const box = cell.getBoundingClientRect();
    if (!box.width) continue;
    const wrap = cell.closest('.table-wrap');
    if (!wrap) { problems.push(`no scroll container: ${cell.textContent}`); continue; }
    const frame = wrap.getBoundingClientRect();
    if (frame.left < -0.5 || frame.right > window.innerWidth + 0.5) {
      problems.push(`container past the viewport: ${cell.textContent}`);
    }
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(wrap).overflowX)
      && wrap.scrollWidth > wrap.clientWidth;
    const inside = box.left >= frame.left - 0.5 && box.right <= frame.right + 0.5;
    if (!scrolls && !inside) problems.push(`clipped: ${cell.textContent}`);
    if (scrolls && (wrap.tabIndex !== 0 || !wrap.getAttribute('aria-label'))) {
      problems.push(`scrolls out of the keyboard's reach: ${cell.textContent}`);
    }
    if (cell.scrollWidth > cell.clientWidth + 1) problems.push(`text cut: ${cell.textContent}`);
  }
  return {cells: cells.length, problems};
}"""

LONG_MODEL = "acme-enterprise-long-context-reasoning-model-2026-preview-extended-edition"
LONG_FEATURE = "customer-support-escalation-summaries-for-enterprise-accounts"


def test_without_data_the_page_offers_upload_and_demo_at_once(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser, viewport={"width": 1280, "height": 800}) as page:
        register(page, web_server.base_url)
        page.get_by_test_id("nav-usage").click()
        expect(page.get_by_test_id("dashboard-empty")).to_be_visible()
        expect(page.get_by_test_id("upload-panel")).to_be_visible()
        expect(page.get_by_test_id("demo-panel")).to_be_visible()
        expect(page.get_by_test_id("dropzone")).to_be_visible()
        expect(page.get_by_test_id("add-data-toggle")).to_be_hidden()
        expect(page.get_by_test_id("dashboard-totals")).to_have_count(0)
        screenshot(page, "usage-empty-1280")


def test_with_data_the_page_opens_on_the_figures_and_charts(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser, viewport={"width": 1280, "height": 800}) as page:
        register(page, web_server.base_url)
        load_demo_data(page)
        reopen_usage(page)
        summary = api_get(page, "/api/usage/summary")["body"]

        toggle = page.get_by_test_id("add-data-toggle")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.get_by_test_id("upload-panel")).to_be_hidden()
        expect(page.get_by_test_id("demo-panel")).to_be_hidden()
        for testid in ("dashboard-totals", "chart-spend-by-day", "chart-by-feature"):
            expect(page.get_by_test_id(testid)).to_be_visible()
            assert in_viewport(page, testid), f"{testid} is below the first screen"
        screenshot(page, "usage-1280")

        # spend by day: each day's stack adds up to that day's spend, drawn to one scale
        spend = {row["day"]: row["cost_usd"] for row in summary["by_day"]}
        stacks = page.evaluate(STACKS_JS)
        assert [stack["day"] for stack in stacks] == sorted(spend)
        for stack in stacks:
            assert abs(sum(stack["values"]) - spend[stack["day"]]) < 1e-5 * len(summary["by_model"])
        busiest = max(stacks, key=lambda stack: sum(stack["values"]))
        pixels_per_dollar = busiest["height"] / sum(busiest["values"])
        for stack in stacks:
            assert abs(stack["height"] - sum(stack["values"]) * pixels_per_dollar) < 0.5
        legend = page.get_by_test_id("chart-spend-by-day-legend").locator("li")
        expect(legend).to_have_count(min(len(summary["by_model"]), 6))
        if len(summary["by_model"]) > 6:
            expect(legend.last).to_contain_text("Other")

        # latency: p50, p95 and p99 per model, each column in one unit
        timed = [m for m in summary["by_model"] if m["p99_latency_ms"] is not None]
        assert timed
        table = page.get_by_test_id("latency-table")
        expect(table.locator("tbody tr")).to_have_count(len(timed))
        for column, name in enumerate(("p50", "p95", "p99")):
            values = [m[f"{name}_latency_ms"] for m in timed]
            unit = "s" if max(values) >= 10_000 else "ms"
            expect(table.locator("thead th").nth(column + 1)).to_have_text(f"{name} ({unit})")
            cells = table.locator(f"tbody tr td:nth-of-type({column + 1})")
            expect(cells).to_have_text([latency_text(value, unit) for value in values])

        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.get_by_test_id("upload-panel")).to_be_visible()
        expect(page.get_by_test_id("demo-panel")).to_be_visible()
        toggle.click()
        expect(page.get_by_test_id("upload-panel")).to_be_hidden()


def test_every_table_reads_whole_at_375_px(browser: Browser, web_server: ServerProcess) -> None:
    with browser_page(
        browser, viewport={"width": 375, "height": 800}, is_mobile=True, has_touch=True
    ) as page:
        register(page, web_server.base_url)
        load_demo_data(page)
        last_day = max(row["day"] for row in api_get(page, "/api/usage/summary")["body"]["by_day"])
        answer = api_upload(
            page,
            "long.csv",
            HEADER
            + (f"{last_day}T12:00:00Z,acme,{LONG_MODEL},900,200,0.004,12500,ok,{LONG_FEATURE}\n"),
        )
        assert answer["body"]["rows_accepted"] == 1
        reopen_usage(page)
        expect(page.get_by_test_id("chart-spend-by-day")).to_be_visible()
        screenshot(page, "usage-375")
        for details in page.locator("[data-testid=usage] details.chart-data").all():
            details.locator("summary").click()
        found = page.evaluate(CLIPPED_CELLS_JS)
        assert found["cells"] > 0
        assert found["problems"] == []
        long_name = page.get_by_test_id("latency-table").get_by_role("rowheader", name=LONG_MODEL)
        expect(long_name).to_have_attribute("title", f"acme / {LONG_MODEL}")
        feature = page.get_by_test_id("top-features").get_by_role("rowheader", name=LONG_FEATURE)
        expect(feature).to_have_attribute("title", LONG_FEATURE)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.querySelector('main').scrollWidth") <= 375
        page.get_by_test_id("card-latency").scroll_into_view_if_needed()
        screenshot(page, "usage-375-tables")


def test_dropping_a_bad_file_shows_the_line_errors(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        page.get_by_test_id("nav-usage").click()
        expect(page.get_by_test_id("dashboard-empty")).to_be_visible()

        transfer = page.evaluate_handle(DROP_FILE_JS, ["usage.csv", BAD_FILE])
        dropzone = page.get_by_test_id("dropzone")
        dropzone.dispatch_event("dragenter", {"dataTransfer": transfer})
        expect(dropzone).to_have_attribute("data-over", "true")
        with page.expect_request(lambda r: r.url.endswith("/api/usage/uploads")) as upload:
            dropzone.dispatch_event("drop", {"dataTransfer": transfer})
        assert "multipart/form-data" in (upload.value.headers.get("content-type") or "")
        expect(dropzone).to_have_attribute("data-over", "false")

        expect(page.get_by_test_id("upload-accepted")).to_have_attribute("data-count", "3")
        expect(page.get_by_test_id("upload-rejected")).to_have_attribute("data-count", "3")
        expect(page.get_by_test_id("upload-progress")).to_have_attribute("value", "100")
        expect(page.get_by_test_id("upload-progress-text")).to_have_text("Uploaded usage.csv.")
        errors = page.get_by_test_id("upload-errors").locator("tbody tr")
        expect(errors).to_have_count(len(BAD_LINES))
        for i, line in enumerate(BAD_LINES):
            expect(errors.nth(i).locator("th")).to_have_text(line)
            expect(errors.nth(i).locator("td")).not_to_be_empty()

        summary = api_get(page, "/api/usage/summary")["body"]
        assert summary["totals"]["requests"] == 3
        expect(page.get_by_test_id("dashboard-requests")).to_contain_text("3")
        # the panels stay open on the report until closed with the button that now shows
        expect(page.get_by_test_id("add-data-toggle")).to_have_attribute("aria-expanded", "true")
        expect(page.get_by_test_id("upload-errors")).to_be_visible()


def test_the_dashboard_follows_the_date_range(browser: Browser, web_server: ServerProcess) -> None:
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        load_demo_data(page)
        everything = api_get(page, "/api/usage/summary")["body"]
        days = sorted(row.get("day") or row.get("date") for row in everything["by_day"])
        assert len(days) >= 7
        start, end = days[-7][:10], days[-1][:10]

        page.get_by_label("From", exact=True).fill(end)
        page.get_by_label("To", exact=True).fill(start)
        page.get_by_test_id("range-apply").click()
        expect(page.get_by_test_id("range-error")).to_have_text(
            "The start date must be on or before the end date."
        )

        page.get_by_label("From", exact=True).fill(start)
        page.get_by_label("To", exact=True).fill(end)
        with page.expect_request(re.compile(r"/api/usage/summary\?")) as asked:
            page.get_by_test_id("range-apply").click()
        assert f"from={start}" in asked.value.url and f"to={end}" in asked.value.url
        windowed = api_get(page, f"/api/usage/summary?from={start}&to={end}")["body"]
        assert 0 < windowed["totals"]["requests"] < everything["totals"]["requests"]
        expect(page.get_by_test_id("dashboard-requests")).to_contain_text(
            f"{windowed['totals']['requests']:,}"
        )
        expect(page.get_by_test_id("chart-spend-by-day-point")).to_have_count(
            len(windowed["by_day"])
        )

        page.get_by_test_id("range-reset").click()
        expect(page.get_by_test_id("dashboard-requests")).to_contain_text(
            f"{everything['totals']['requests']:,}"
        )
        expect(page.get_by_label("From", exact=True)).to_have_value("")


def test_requests_no_price_covers_never_read_as_zero(
    browser: Browser, web_server: ServerProcess
) -> None:
    unknown_model = "in-house-model-7"
    rows = ["timestamp,provider,model,input_tokens,output_tokens,latency_ms,status,feature"]
    rows += [
        f"2026-11-02T09:0{minute}:00Z,openai,gpt-4o-mini,1000,200,700,ok,chat"
        for minute in range(3)
    ]
    rows += [
        f"2026-11-02T10:0{minute}:00Z,acme,{unknown_model},800,100,500,ok,lab"
        for minute in range(2)
    ]
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        assert api_upload(page, "mixed.csv", "\n".join(rows) + "\n")["status"] in (200, 201, 202)
        summary = api_get(page, "/api/usage/summary")["body"]
        assert summary["totals"]["unpriced_requests"] == 2
        page.get_by_test_id("nav-usage").click()
        expect(page.get_by_test_id("dashboard-cost")).to_contain_text("+ 2 unpriced")
        lab = page.get_by_test_id("top-features").locator("tbody tr", has_text="lab")
        expect(lab.locator("td").nth(1)).to_have_text("unpriced")
