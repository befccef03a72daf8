"""Notifier backends (console, webhook, e-mail) and the flows' failure hook."""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes
from typing import Any

import pytest
from prefect import flow

from flows.notify import (
    Alert,
    ConsoleNotifier,
    EmailNotifier,
    FanOut,
    WebhookNotifier,
    notifier_for,
    notify_on_failure,
)
from optbot.config import NotifySettings
from tests.flows.conftest import Hook

ALERT = Alert(
    subject="reconciliation break on 2026-11-20",
    body="- order:1:known: unknown order",
    severity="critical",
    source="reconcile",
    links=("data/reports/reconcile-2026-11-20.md",),
)


class Mailbox(socketserver.ThreadingTCPServer):
    """Just enough SMTP on a loopback port to accept mail and keep each message's bytes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        box = self

        class Session(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 mailbox ready")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        body = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            body += chunk
                        box.messages.append(body)
                        self.reply("250 queued")
                    elif verb == b"QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        super().__init__(("127.0.0.1", 0), Session)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_console_prints_subject_body_and_links(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleNotifier().send(ALERT)
    err = capsys.readouterr().err
    assert "[CRITICAL] reconcile: reconciliation break on 2026-11-20" in err
    assert "- order:1:known: unknown order" in err
    assert "see data/reports/reconcile-2026-11-20.md" in err


def test_webhook_posts_the_alert_as_json(hook: Hook) -> None:
    WebhookNotifier(hook.url).send(ALERT)
    (body,) = hook.bodies
    assert body["subject"] == ALERT.subject and body["severity"] == "critical"
    assert body["text"].startswith("[CRITICAL] reconcile:")
    assert body["links"] == ["data/reports/reconcile-2026-11-20.md"]


def test_email_goes_through_smtp() -> None:
    box = Mailbox()
    try:
        EmailNotifier("trader@example.com", host="127.0.0.1", port=box.server_address[1]).send(
            ALERT
        )
    finally:
        box.shutdown()
        box.server_close()
    (raw,) = box.messages
    mail = message_from_bytes(raw)
    assert mail["To"] == "trader@example.com"
    assert mail["Subject"] == "[optbot critical] reconciliation break on 2026-11-20"
    assert "unknown order" in mail.get_payload()


def test_one_broken_backend_does_not_silence_the_others(
    hook: Hook, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = WebhookNotifier("http://127.0.0.1:9/nowhere", timeout_s=2)
    fan_out = FanOut([dead, WebhookNotifier(hook.url), ConsoleNotifier()])
    fan_out.send(ALERT)  # must not raise
    assert len(hook.bodies) == 1
    assert "reconciliation break" in capsys.readouterr().err
    assert len(fan_out.failures) == 1 and fan_out.failures[0].startswith("webhook: ConnectError")


def test_backends_follow_the_notify_settings() -> None:
    assert [n.name for n in notifier_for(None).notifiers] == ["console"]
    both = NotifySettings(webhook_url="http://127.0.0.1:1/x", email_to="a@example.com")
    assert [n.name for n in notifier_for(both).notifiers] == ["console", "webhook", "email"]


def test_failure_hook_names_the_flow_and_the_error(
    hook: Hook, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "optbot.toml"
    config.write_text(f'[notify]\nwebhook_url = "{hook.url}"\n', encoding="utf-8")

    @flow(name="doomed", on_failure=[notify_on_failure])
    def doomed(config_path: str | None = None) -> None:
        raise RuntimeError("disk on fire")

    state = doomed(config_path=str(config), return_state=True)
    assert state.is_failed()
    (body,) = hook.bodies
    assert body["subject"] == "flow 'doomed' failed" and body["severity"] == "critical"
    assert "disk on fire" in body["body"]
    assert "flow 'doomed' failed" in capsys.readouterr().err
