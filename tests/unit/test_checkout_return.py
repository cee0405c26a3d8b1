"""Where Stripe sends a buyer back: the dashboard's Credits page when there is a dashboard, the
API's own pages otherwise; Stripe's `{CHECKOUT_SESSION_ID}` template left for it to fill."""

from __future__ import annotations

from gateway.billing import checkout_return_urls


def test_with_a_dashboard_both_urls_return_to_it() -> None:
    success, cancel = checkout_return_urls("http://127.0.0.1:9100", "http://127.0.0.1:9101/")
    assert success == (
        "http://127.0.0.1:9101/checkout/return?status=success&session_id={CHECKOUT_SESSION_ID}"
    )
    assert cancel == (
        "http://127.0.0.1:9101/checkout/return?status=cancel&session_id={CHECKOUT_SESSION_ID}"
    )


def test_without_one_the_api_pages_answer() -> None:
    success, cancel = checkout_return_urls("https://api.pryv.test", None)
    assert (
        success == "https://api.pryv.test/api/v1/billing/success?session_id={CHECKOUT_SESSION_ID}"
    )
    assert cancel == "https://api.pryv.test/api/v1/billing/cancel?session_id={CHECKOUT_SESSION_ID}"
