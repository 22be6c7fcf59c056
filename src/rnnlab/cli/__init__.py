"""Layer 6, the commands: entry points (``entry``), the ``rnnlab`` command (``app``) and
its two processes (``recorder``, ``link``), the sweep's Hydra callback (``callback``) and
launchers (``launchers``), ``rnnlab-rerun``, ``rnnlab-doctor``, ``rnnlab-plot``, and the
one-line errors (``errors``, ``usage``)."""
