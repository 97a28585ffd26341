"""Using a trained head: the checkpoint format, class probabilities, predictions on new videos."""
