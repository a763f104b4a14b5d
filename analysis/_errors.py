"""AnalysisError: a run folder the analysis cannot read (a light module: the CLI catches it)."""


class AnalysisError(Exception):
    """AnalysisError is a run folder the analysis cannot read: it names the folder and the fix."""
