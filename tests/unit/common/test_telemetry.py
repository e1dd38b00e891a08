import logging

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
