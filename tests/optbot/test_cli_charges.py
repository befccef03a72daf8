"""``optbot charges`` through the real root app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner, Result

from optbot.cli import app

runner = CliRunner()
EXAMPLE = ["--buy", "100", "--sell", "120", "--quantity", "75", "--date", "2025-06-10"]


def invoke(*args: str) -> Result:
    return runner.invoke(app, ["charges", *args])


def test_json_of_cli_example_matches_hand_figures() -> None:
    # Worked in tests/market/test_charges.py: total 63.27 on 2025-06-10.
    result = invoke(*EXAMPLE, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "brokerage": "40.00",
        "stt": "9.00",
        "exchange_txn": "5.78",
        "sebi": "0.02",
        "stamp_duty": "0.23",
        "gst": "8.24",
        "total": "63.27",
    }


def test_table_shows_breakdown_and_pnl_for_round_trip() -> None:
    result = invoke(*EXAMPLE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("40.00", "9.00", "5.78", "0.02", "0.23", "8.24", "63.27", "0.1% of sell premium"):
        assert text in out, text
    # gross 9,000 − 7,500 = 1,500.00; net 1,500 − 63.27 = 1,436.73
    assert "Gross P&L" in out and "1,500.00" in out
    assert "Net P&L" in out and "1,436.73" in out


def test_buy_only_has_no_pnl_and_no_stt() -> None:
    result = invoke("--buy", "100", "--quantity", "75", "--date", "2025-06-10", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["stt"] == "0.00"
    assert got["total"] == "26.95"  # worked in tests/market/test_charges.py
    table = invoke("--buy", "100", "--quantity", "75", "--date", "2025-06-10")
    assert "Net P&L" not in table.stdout


def test_sell_only_on_old_rates_day() -> None:
    # sell 75 @ 120 on 2024-09-30: STT 0.0625% × 9,000 = 5.625 → 5.63;
    # exchange 0.0495% × 9,000 = 4.455 → 4.46; SEBI 0.009 → 0.01; stamp 0;
    # GST 18% × (20 + 4.46 + 0.01) = 4.4046 → 4.40; total 20 + 5.63 + 4.46 + 0.01 + 4.40 = 34.50
    result = invoke("--sell", "120", "--quantity", "75", "--date", "2024-09-30", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert (got["stt"], got["exchange_txn"], got["gst"], got["total"]) == (
        "5.63",
        "4.46",
        "4.40",
        "34.50",
    )


def test_custom_brokerage() -> None:
    # ₹15.50 × 2 = 31.00; GST 18% × 36.80 = 6.624 → 6.62; total 52.65
    result = invoke(*EXAMPLE, "--brokerage", "15.50", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert (got["brokerage"], got["gst"], got["total"]) == ("31.00", "6.62", "52.65")


def test_date_defaults_to_today() -> None:
    result = invoke("--buy", "100", "--quantity", "75", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["brokerage"] == "20.00"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--buy", "-5", "--quantity", "75"], "'-5'"),
        (["--sell", "abc", "--quantity", "75"], "'abc'"),
        (["--buy", "nan", "--quantity", "75"], "'nan'"),
        (["--buy", "10.001", "--quantity", "75"], "'10.001'"),
        (["--buy", "100", "--quantity", "0"], "'0'"),
        (["--buy", "100", "--quantity", "1.5"], "'1.5'"),
        (["--buy", "100", "--quantity", "75", "--date", "2020-01-01"], "2020-01-01"),
        (["--buy", "100", "--quantity", "75", "--date", "2025-13-01"], "'2025-13-01'"),
        (["--buy", "100", "--quantity", "75", "--brokerage", "-1"], "'-1'"),
        (["--quantity", "75"], "--buy"),
        (["--buy", "100"], "--quantity"),
    ],
)
def test_bad_input_is_one_line_error_exit_2(args: list[str], named: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert named in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_help_shows_an_example() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "optbot charges --buy 100 --sell 120 --quantity 75" in result.stdout
