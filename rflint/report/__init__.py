"""Layer 4: reports.  ``ModelReport`` gathers one model's analysis and findings; renderers turn a
list of them into text, JSON, SARIF, GitHub annotations or Markdown."""

from rflint.report.model import ModelReport, build_report

__all__ = ["ModelReport", "build_report"]
