"""E-mail over SMTP (stdlib ``smtplib`` run in a worker thread).

``security``: ``starttls`` (upgrade a plain connection, the default on 587),
``tls`` (implicit TLS, usually 465) or ``none``. Certificates are verified
against the system store plus ``notifier_smtp_ca_file`` if set. Messages have
a plain-text and an HTML part and a ``Message-ID`` derived from the
notification's dedupe key, so a resent notification carries the same id.
"""

from __future__ import annotations

import asyncio
import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from nazar_common.schemas.config import EmailConfig
from nazar_notifier.channels.base import DeliveryFailedError, DeliveryRetryError
from nazar_notifier.model import Notification, SendResult
from nazar_notifier.render import (
    STATUS_EMOJI,
    alert_title,
    dashboard_link,
    expected_text,
    fmt_number,
    notification_title,
    plain_text,
)


def render_html(n: Notification) -> str:
    rows = []
    for a in n.alerts:
        link = dashboard_link(n, a)
        cells = [
            f"{STATUS_EMOJI.get(a.status, '')} <b>{html.escape(alert_title(a))}</b>",
            html.escape(a.severity),
            html.escape(a.host),
            html.escape(a.metric or "-"),
            f"{html.escape(fmt_number(a.value))} vs {html.escape(expected_text(a))}",
            html.escape(a.explanation or ""),
            f'<a href="{html.escape(link)}">open</a>' if link else "",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th align=left>{h}</th>"
        for h in ("Alert", "Severity", "Host", "Metric", "Observed vs expected", "Why", "")
    )
    return (
        "<!doctype html><html><body style=\"font-family:sans-serif\">"
        f"<h2>{html.escape(notification_title(n))}</h2>"
        f"<table cellpadding=4 border=1 style=\"border-collapse:collapse\"><tr>{head}</tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


def build_message(n: Notification, config: EmailConfig) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = notification_title(n)
    msg["From"] = config.sender
    msg["To"] = ", ".join(config.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{n.dedupe_key[:40]}@nazar>"
    msg["X-Nazar-Notification-Key"] = n.dedupe_key
    msg.set_content(plain_text(n))
    msg.add_alternative(render_html(n), subtype="html")
    return msg


class EmailChannel:
    def __init__(self, config: EmailConfig, timeout: float, ca_file: str = "") -> None:
        self._config = config
        self._timeout = timeout
        self._ca_file = ca_file
        self.endpoint = f"smtp://{config.smtp_host}:{config.smtp_port}"

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._ca_file:
            context.load_verify_locations(cafile=self._ca_file)
        return context

    def _send_sync(self, msg: EmailMessage) -> str:
        cfg = self._config
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(
                cfg.smtp_host, cfg.smtp_port, timeout=self._timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if cfg.security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                smtp.login(cfg.username, password)
            refused = smtp.send_message(msg)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        if refused:
            return f"refused for {len(refused)} recipient(s)"
        return "accepted"

    async def send(self, notification: Notification) -> SendResult:
        msg = build_message(notification, self._config)
        try:
            detail = await asyncio.wait_for(
                asyncio.to_thread(self._send_sync, msg), self._timeout + 5
            )
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailedError(f"SMTP authentication failed ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailedError("SMTP server refused every recipient") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailedError(f"SMTP server lacks a feature: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.smtp_code}"
            if 400 <= exc.smtp_code < 500:
                raise DeliveryRetryError(text) from None
            raise DeliveryFailedError(text) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailedError(f"TLS certificate rejected: {exc.verify_message}") from None
        except TimeoutError:
            raise DeliveryRetryError("SMTP timeout") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryRetryError(f"SMTP error ({type(exc).__name__})") from None
        return SendResult(endpoint=self.endpoint, detail=detail)
