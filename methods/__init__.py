"""msbench.methods."""
