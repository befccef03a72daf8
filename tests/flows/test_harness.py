"""The Prefect harness runs a trivial flow offline (guards the pinned Prefect set)."""

from prefect import flow, task


@task
def _double(x: int) -> int:
    return 2 * x


@flow
def _tiny(x: int) -> int:
    return _double(x) + 1


def test_flow_runs_on_temporary_api() -> None:
    assert _tiny(20) == 41
