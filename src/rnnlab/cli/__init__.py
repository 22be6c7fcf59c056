"""Layer 6, the commands: their entry points, the ``rnnlab`` command and its two processes,
the sweep's Hydra callback and launchers, ``rnnlab-rerun``, ``-doctor`` and ``-plot``."""
