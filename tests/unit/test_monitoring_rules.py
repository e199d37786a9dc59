"""The rules of budgets and anomalies on hand-made figures: calendar periods, the burn-rate
projection, a budget's state, the robust anomaly test, webhook URLs and signatures, and the
chat's reading of a request to set a budget."""

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from apex.errors import BadRequest
from apex.llm.entities import extract_budgets
from apex.monitoring.anomalies import anomalies, baseline, judge
from apex.monitoring.budgets import classify, period_window, project
from apex.monitoring.causes import cause_key
from apex.monitoring.money import from_micros, to_micros
from apex.monitoring.webhooks import checked_url, private_address, sign

MONDAY = date(2026, 11, 30)


def test_periods_are_utc_calendar_days_and_months() -> None:
    late = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_window("month", late).start == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_window("month", late).end == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_window("day", late).end == datetime(2027, 1, 1, tzinfo=UTC)
    february = period_window("month", datetime(2028, 2, 10, tzinfo=UTC))
    assert february.end - february.start == timedelta(days=29)
    with pytest.raises(ValueError):
        period_window("week", late)


def test_the_projection_is_the_burn_rate_times_the_period() -> None:
    window = period_window("month", datetime(2026, 11, 5, tzinfo=UTC))
    tenth_day = datetime(2026, 11, 11, tzinfo=UTC)
    assert project(Decimal(100), window, tenth_day) == Decimal(300)
    # the first minutes of a period count as an hour
    assert project(Decimal(1), window, window.start + timedelta(minutes=1)) == Decimal(720)


@pytest.mark.parametrize(
    ("spent", "projected", "state"),
    [
        (Decimal(10), Decimal(90), "ok"),
        (Decimal(50), Decimal(90), "warning"),
        (Decimal(10), Decimal(101), "warning"),
        (Decimal(100), Decimal(100), "exceeded"),
    ],
)
def test_a_budget_state(spent: Decimal, projected: Decimal, state: str) -> None:
    assert classify(Decimal(100), [50, 80, 100], spent, projected) == state


def test_a_budget_without_thresholds_below_100_warns_only_on_its_projection() -> None:
    assert classify(Decimal(100), [100], Decimal(99), Decimal(99)) == "ok"


def test_money_round_trips_through_micro_dollars() -> None:
    assert to_micros(Decimal("1234.5678905")) == 1_234_567_890
    assert from_micros(1_234_567_891) == Decimal("1234.567891")


def steady(days: int, end: date, value: Decimal, weekend: Decimal) -> dict[date, Decimal]:
    series = {}
    for back in range(1, days + 1):
        day = end - timedelta(days=back)
        series[day] = weekend if day.weekday() >= 5 else value + Decimal(back % 3)
    return series


def test_a_spike_is_flagged_once_and_a_quiet_weekend_is_not() -> None:
    today = MONDAY + timedelta(days=14)
    daily = steady(40, today, Decimal(100), Decimal(40))
    assert all(judge(daily, day) is None for day in daily if day >= MONDAY)
    reference = baseline(daily, today)
    assert reference is not None and reference.median == Decimal(101)
    daily[today - timedelta(days=3)] = Decimal(400)  # a Friday
    daily[today - timedelta(days=2)] = Decimal(400)  # and the Saturday after it: the same run
    found = anomalies(
        daily, [today - timedelta(days=back) for back in range(7, -1, -1)], today=today
    )
    assert [(a.day, a.direction) for a in found] == [(today - timedelta(days=3), "high")]
    assert found[0].bound == Decimal(101) + max(
        Decimal(4) * found[0].baseline.spread, Decimal(5), Decimal("0.3") * Decimal(101)
    )


def test_a_run_of_anomalous_days_alerts_on_its_first_day() -> None:
    today = MONDAY + timedelta(days=21)
    daily = steady(40, today, Decimal(100), Decimal(100))
    for back in (4, 3, 2):  # Thursday to Saturday of a runaway
        daily[today - timedelta(days=back)] = Decimal(1_000)
    found = anomalies(daily, [today - timedelta(days=back) for back in range(7, 0, -1)])
    assert [a.day for a in found] == [today - timedelta(days=4)]


def test_today_is_judged_only_upwards_and_a_young_series_not_at_all() -> None:
    today = MONDAY + timedelta(days=14)
    daily = steady(40, today, Decimal(100), Decimal(100))
    daily[today] = Decimal(1)
    assert anomalies(daily, [today], today=today) == []
    assert judge(daily, today) is not None
    young = {today - timedelta(days=back): Decimal(1) for back in range(1, 6)}
    young[today] = Decimal(10_000)
    assert anomalies(young, [today], today=today) == []


def test_small_moves_under_the_minimum_delta_are_not_anomalies() -> None:
    today = MONDAY + timedelta(days=14)
    daily = {today - timedelta(days=back): Decimal("1.00") for back in range(1, 41)}
    daily[today - timedelta(days=1)] = Decimal("4.99")
    assert judge(daily, today - timedelta(days=1)) is None


def test_cause_keys_are_stable_and_bounded() -> None:
    key = cause_key("anomaly", "model", "m" * 5_000, "2026-12-01")
    assert len(key) == 64 and key == cause_key("anomaly", "model", "m" * 5_000, "2026-12-01")
    assert cause_key("a", "bc") != cause_key("ab", "c")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.org/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://u:p@x.org/",
        "x.org/hook",
        "http:///x",
        "http://x .org",
        "http://x.org:0/",
        "http://x.org:99999/",
        "gopher://x.org",
    ],
)
def test_webhook_urls_must_be_plain_http(url: str) -> None:
    with pytest.raises(BadRequest):
        checked_url(url)


def test_webhook_signature_is_the_hmac_of_the_exact_body() -> None:
    body = b'{"id":"a"}'
    assert (
        checked_url(" https://hooks.example.com/apex?x=1 ") == "https://hooks.example.com/apex?x=1"
    )
    assert sign("secret", body) == "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("text", "setup"),
    [
        ("set a $2,000 monthly budget for gpt-4o", True),
        ("create a budget of $50 a day for chat", True),
        ("we have $5k a month, do we fit", False),
        ("is $3,000 a month enough for our budget", False),
    ],
)
def test_the_chat_tells_setting_a_budget_from_checking_one(text: str, setup: bool) -> None:
    budgets = extract_budgets(text)
    assert budgets and budgets[0].setup is setup


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://127.9.9.9/h",
        "http://10.0.0.1/h",
        "http://172.16.5.4/h",
        "http://192.168.1.1/h",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/h",
        "http://100.64.0.1/h",
        "http://[::1]/h",
        "http://[fc00::1]/h",
        "http://[fe80::1%25eth0]/h",
        "http://[::ffff:10.0.0.1]/h",
        "http://224.0.0.1/h",
        "http://localhost:8080/h",
        "http://LOCALHOST./h",
    ],
)
async def test_webhook_hosts_that_are_not_public_addresses_are_named(url: str) -> None:
    assert await private_address(url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "https://[2606:4700::1]/h",
        "https://hooks.invalid/never-resolves",
    ],
)
async def test_public_and_unresolvable_webhook_hosts_pass(url: str) -> None:
    assert await private_address(url) is None
