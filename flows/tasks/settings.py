"""Settings and warehouse for a flow run: what every flow does first.

Flow parameters carry only plain values (a config path, a data directory), never secrets, so a
deployment's parameters can be shown in the Prefect UI as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market.calendar import NseCalendar
    from optbot.config import Settings
    from warehouse import Warehouse


def load_flow_settings(config_path: str | None = None, data_dir: str | None = None) -> Settings:
    """The validated configuration; ``data_dir`` (a flow parameter) beats ``[data] dir``."""
    from optbot.config import DataSettings, load_settings

    settings = load_settings(Path(config_path) if config_path else None)
    if data_dir:
        settings = settings.model_copy(update={"data": DataSettings(dir=Path(data_dir))})
    return settings


def flow_warehouse(settings: Settings) -> Warehouse:
    """The warehouse under ``[data] dir``."""
    from warehouse import Warehouse

    return Warehouse(settings.data.dir)


def flow_calendar(settings: Settings) -> NseCalendar:
    """The NSE calendar with the user's override file (``[calendar] overrides_file``) on top."""
    from market.calendar import NseCalendar, default_calendar

    overrides = settings.calendar.overrides_file
    if overrides is None:
        return default_calendar()
    text = Path(overrides).read_text(encoding="utf-8")
    return NseCalendar.from_overrides(text, origin=str(overrides))
