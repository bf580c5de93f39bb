"""The spaCy components ``ave_tagger`` and ``ave_coupling``, their scorer, serialization and training state."""
