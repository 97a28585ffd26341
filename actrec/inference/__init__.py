"""Using a trained model on new videos: what the user names, predictions on videos and windows."""
