"""Layer 4, one job: compute (pure) -> write files -> record in the store, for training
(``compute``, ``files``, ``training``) and basin maps (``basin_map``) alike; what a job
produces (``results``) and says (``text``)."""
