"""Layer 2: the receptive-field engine (rf-semantics.md §1-3).  Depends only on rflint.trace."""

from rflint.engine.analysis import analyze
from rflint.engine.prepare import Prepared, prepare
from rflint.engine.results import Analysis, Layer

__all__ = ["Analysis", "Layer", "Prepared", "analyze", "prepare"]
