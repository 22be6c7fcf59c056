"""Layer 1, the process (standard library only): signals (the one module that installs
handlers), fork-based helpers (``forked``), and what a job created on disk (``created``)."""
