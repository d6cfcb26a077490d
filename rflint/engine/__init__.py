"""Layer 2: the receptive-field engine (rf-semantics.md §1-3).  Depends only on rflint.trace."""

from rflint.engine.analysis import Analysis, Layer, Prepared, analyze, prepare

__all__ = ["Analysis", "Layer", "Prepared", "analyze", "prepare"]
