"""The usage page in a real browser against a real server: a file dropped on the page uploads with
progress and lists its rejected lines; the dashboard follows the date range."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.support.browser import (
    api_get,
    browser_page,
    load_demo_data,
    register,
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
