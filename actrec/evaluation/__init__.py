"""After training: metrics, the confusion heatmap and timelines, the summary page."""
