"""The consulta classifier: features, training, evaluation and persistence."""
