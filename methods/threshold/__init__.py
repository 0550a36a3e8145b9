"""FLAIR intensity threshold inside the brain: the training-free floor of the leaderboard."""
