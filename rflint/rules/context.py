"""The one object every rule receives: the analysis, its structure and the settings.

Expensive facts (the structure, the stem experiment) are computed lazily and at most once, so a
run with only some rules selected pays only for those.
"""

from __future__ import annotations

from functools import cached_property

from rflint.engine import Analysis
from rflint.rules.base import Settings
from rflint.rules.structure import Structure, analyse_structure


class LintContext:
    def __init__(self, analysis: Analysis, settings: Settings | None = None):
        self.analysis = analysis
        self.settings = settings or Settings()

    @cached_property
    def structure(self) -> Structure:
        return analyse_structure(self.analysis, self.settings.min_tail_layers)

    @cached_property
    def stem(self):
        from rflint.rules.stem import stem_experiment

        return stem_experiment(self)

    @property
    def size(self) -> tuple[int, ...]:
        return self.analysis.input_size
