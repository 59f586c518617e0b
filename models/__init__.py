"""ACIR network, data, training, evaluation and OOD detection (torch only)."""
