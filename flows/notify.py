"""Alerts to a person: a failed flow, a reconciliation break, a disk filling up.

One interface, :class:`Notifier` (``send(alert)``), with three backends chosen by the
``[notify]`` section of the configuration:

* console — always on: the alert is printed to stderr;
* webhook — ``notify.webhook_url``: an HTTP POST of the alert as JSON (a ``text`` field
  too, which chat webhooks such as Slack's or Mattermost's show as the message);
* e-mail — ``notify.email_to``: a plain-text mail through the SMTP relay on localhost:25.

A backend that fails is logged and skipped; the others still get the alert, and sending an
alert never raises. Alerts carry no secrets: flows put only reasons and figures in them.

Flows attach :func:`notify_on_failure` as an ``on_failure`` hook.
"""

from __future__ import annotations

import logging
import smtplib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

if TYPE_CHECKING:
    from optbot.config import NotifySettings, Settings

log = logging.getLogger("optbot.notify")

Severity = Literal["info", "warning", "critical"]

SMTP_HOST = "localhost"
SMTP_PORT = 25
SENDER = "optbot@localhost"


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person should know: a one-line subject and a plain-text body."""

    subject: str
    body: str = ""
    severity: Severity = "warning"
    source: str = "optbot"  # the flow or part that raised it
    links: tuple[str, ...] = ()  # report paths or URLs

    def as_text(self) -> str:
        """The alert as plain text, subject first."""
        parts = [f"[{self.severity.upper()}] {self.source}: {self.subject}"]
        if self.body:
            parts.append(self.body)
        parts.extend(f"see {link}" for link in self.links)
        return "\n".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The webhook body."""
        return {
            "text": self.as_text(),
            "subject": self.subject,
            "body": self.body,
            "severity": self.severity,
            "source": self.source,
            "links": list(self.links),
        }


class Notifier(Protocol):
    """Delivers an alert somewhere; raises if it could not."""

    name: str

    def send(self, alert: Alert) -> None: ...


@dataclass(slots=True)
class ConsoleNotifier:
    """Writes the alert to stderr."""

    name: str = "console"
    stream: Any = None  # default: sys.stderr at send time (pytest swaps it)

    def send(self, alert: Alert) -> None:
        """Print the alert (flows log their own warnings; logging it too would show it twice)."""
        print(alert.as_text(), file=self.stream or sys.stderr, flush=True)


@dataclass(slots=True)
class WebhookNotifier:
    """POSTs the alert as JSON to a URL; any non-2xx reply is a failure."""

    url: str
    timeout_s: float = 10.0
    name: str = "webhook"

    def send(self, alert: Alert) -> None:
        """POST the alert."""
        response = httpx.post(self.url, json=alert.as_json(), timeout=self.timeout_s)
        response.raise_for_status()


@dataclass(slots=True)
class EmailNotifier:
    """Mails the alert through an SMTP relay."""

    to: str
    host: str = SMTP_HOST
    port: int = SMTP_PORT
    sender: str = SENDER
    timeout_s: float = 10.0
    name: str = "email"

    def send(self, alert: Alert) -> None:
        """Send one mail."""
        message = EmailMessage()
        message["Subject"] = f"[optbot {alert.severity}] {alert.subject}"
        message["From"] = self.sender
        message["To"] = self.to
        message.set_content(alert.as_text())
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            smtp.send_message(message)


@dataclass(slots=True)
class FanOut:
    """Sends to every backend; returns which failed instead of raising."""

    notifiers: Sequence[Notifier]
    name: str = "fan-out"
    failures: list[str] = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        """Send to all; a failing backend is logged and recorded in ``failures``."""
        for notifier in self.notifiers:
            try:
                notifier.send(alert)
            except Exception as exc:  # one broken channel must not silence the others
                problem = f"{notifier.name}: {type(exc).__name__}: {exc}"
                self.failures.append(problem)
                log.warning("alert not delivered via %s", problem)


def notifier_for(notify: NotifySettings | None) -> FanOut:
    """Console always, plus webhook and e-mail when configured."""
    backends: list[Notifier] = [ConsoleNotifier()]
    if notify is not None and notify.webhook_url:
        backends.append(WebhookNotifier(notify.webhook_url))
    if notify is not None and notify.email_to:
        backends.append(EmailNotifier(notify.email_to))
    return FanOut(backends)


def send_alert(alert: Alert, settings: Settings | None = None) -> list[str]:
    """Send an alert through the configured backends; returns delivery failures (never raises)."""
    fan_out = notifier_for(settings.notify if settings is not None else None)
    fan_out.send(alert)
    return fan_out.failures


def _settings_for_run(parameters: dict[str, Any]) -> Settings | None:
    """The run's configuration, or None when it cannot be loaded (the alert still goes out)."""
    from flows.tasks.settings import load_flow_settings

    try:
        return load_flow_settings(parameters.get("config_path"), parameters.get("data_dir"))
    except Exception as exc:
        log.warning("alert settings not loaded (%s); console only", type(exc).__name__)
        return None


def notify_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` hook: tell a person which flow failed and why."""
    parameters = dict(getattr(flow_run, "parameters", None) or {})
    message = (getattr(state, "message", None) or "no message").strip()
    alert = Alert(
        subject=f"flow {flow.name!r} failed",
        body=f"run {getattr(flow_run, 'name', '?')}: {message}",
        severity="critical",
        source=str(flow.name),
    )
    send_alert(alert, _settings_for_run(parameters))
