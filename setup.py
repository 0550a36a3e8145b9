"""Maps the four top-level folders onto the ``msbench`` package (``benchmark`` -> ``msbench.benchmark``)."""

from setuptools import find_packages, setup

FOLDERS = ("benchmark", "methods", "datasets", "leaderboard")

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in FOLDERS:
    for sub in (folder, *(f"{folder}.{name}" for name in find_packages(folder))):
        packages.append(f"msbench.{sub}")
        package_dir[f"msbench.{sub}"] = sub.replace(".", "/")

setup(packages=packages, package_dir=package_dir)
