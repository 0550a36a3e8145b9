"""msbench.datasets."""
