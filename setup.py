"""Packages the project's code for Beam's `--setup_file` staging (docs/distributed.md, "Beam's
portable path"): a Beam runner that starts SDK workers in other processes or on other machines
(PortableRunner, Flink, Spark, Dataflow) builds this into an sdist at submission and installs it
on every worker, so the DoFns of the conversion (data_prep) and the Transform / Evaluator code
(components, models) import there. It lists no dependencies: workers run the project's image
(Dockerfile, requirements.txt), or get `--requirements_file=requirements.txt`. Not needed for
`run_local.py` or `make test`, which run from the repository root."""
import setuptools

setuptools.setup(
    name="multitask-image-pipeline",
    version="0.1.0",
    packages=setuptools.find_packages(include=[
        f"{p}{s}" for p in ("config", "data_prep", "models", "components", "pipeline", "schemas", "serving")
        for s in ("", ".*")]),
    package_data={"schemas": ["*.pbtxt"]},
    python_requires=">=3.10",
)
