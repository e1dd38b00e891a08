from __future__ import annotations

import logging

import pytest

from nazar_common.telemetry import RedactingFilter, redact


def test_redacts_keys_tokens_and_passwords() -> None:
    text = (
        "auth Bearer nzr_abc_SECRETSECRET url amqp://user:hunter2@host/ "
        "password=topsecret key nzr_1234_zzzz"
    )
    out = redact(text)
    for secret in ("SECRETSECRET", "hunter2", "topsecret", "zzzz"):
        assert secret not in out
    assert "amqp://user:***@host/" in out


def test_filter_scrubs_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", ("nzr_a_b",), None)
    RedactingFilter().filter(record)
    assert "nzr_a_b" not in record.getMessage()


def test_urls_lose_their_credentials_and_secret_parameters() -> None:
    from nazar_common.redaction import mask_url, mask_urls

    assert mask_url("https://u:PASS@h.example/hook?token=T&a=1&X-Api-Key=K#access_token=Z") == (
        "https://u:***@h.example/hook?token=***&a=1&X-Api-Key=***#access_token=***"
    )
    assert mask_url("https://TOKEN@h.example/x") == "https://***@h.example/x"
    assert mask_url("https://h.example/x?sig=S&sv=2022") == "https://h.example/x?sig=***&sv=2022"
    assert mask_url("http://u:PASS@[::1/x?code=C") == "http://u:***@[::1/x?code=***"  # unparsable
    assert mask_url("https://h.example/a/b") == "https://h.example/a/b"
    assert mask_urls({"a": ["https://u:p@h/x"], "b": 1, "c": "text"}) == {
        "a": ["https://u:***@h/x"], "b": 1, "c": "text"}


def test_filter_scrubs_extras_and_exceptions() -> None:
    url = "https://ops:Pa55word@hooks.example.com/hook?token=T0KEN"
    try:
        raise RuntimeError(f"POST {url} failed")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "delivery to %s failed", (url,), sys.exc_info()
        )
    record.__dict__["endpoint"] = url
    RedactingFilter().filter(record)
    formatted = logging.Formatter("%(message)s %(endpoint)s").format(record)
    assert "Pa55word" not in formatted and "T0KEN" not in formatted
    assert "RuntimeError: POST https://ops:***@hooks.example.com/hook?token=*** failed" in (
        formatted
    )
    from pythonjsonlogger.json import JsonFormatter

    assert "Pa55word" not in JsonFormatter("%(message)s").format(record)


def test_http_client_request_lines_are_not_logged_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """httpx logs each request's URL at INFO as a URL object the redaction
    cannot see into; a Slack webhook URL is itself the secret."""
    import httpx

    from nazar_common.settings import CommonSettings
    from nazar_common.telemetry import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(CommonSettings(log_level="INFO"), "nazar-test")
        url = httpx.URL("https://hooks.slack.example/services/T000/B000/XXXXSECRET")
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", url, "200 OK")
        logging.getLogger("nazar.test").info("still logging")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "still logging" in err
    assert "XXXXSECRET" not in err
