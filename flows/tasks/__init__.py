"""Prefect tasks and helpers shared by several flows."""
