"""Layer 5, a sweep: its plan (``plan``), its summary (``summary``, pure), read from the
store (``collect``) and recorded with its figures (``report``)."""
