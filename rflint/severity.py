"""Severities and their order: shared by the rules and the (torch-free) CLI exit-code logic."""

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}
