"""msbench.leaderboard."""
