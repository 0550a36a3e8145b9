"""msbench.benchmark."""
