"""The Triton side: model repository assembly, Python-backend models and the server launcher."""
