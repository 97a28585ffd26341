"""actrec: video action recognition from cached CNN frame features and a temporal head."""

__version__ = "0.1.0"
