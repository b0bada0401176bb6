"""shopbusy: a TFX pipeline that trains, validates, gates and pushes the drone-shop "busy" classifier."""

from setuptools import find_packages, setup

# The stack is settled (see README "Stack"): TFX 1.16 is the newest release whose wheels
# install here, and Beam 2.59 is the newest that tfx-bsl 1.16 imports with.
INSTALL_REQUIRES = [
    "tfx[kfp]==1.16.0",
    "apache-beam[gcp]==2.59.0",
    "tensorflow==2.16.2",
    "tf-keras==2.16.0",
    "tensorflow-model-analysis==0.47.1",
    "tensorflow-data-validation==1.16.1",
    "tensorflow-transform==1.16.0",
    # TFX builds module-file wheels with `setup.py bdist_wheel` and Beam still imports
    # pkg_resources, which newer setuptools releases dropped.
    "setuptools<81",
    # CsvExampleGen's columnar executor parses CSV with pyarrow (already tfx-bsl's).
    "pyarrow",
    # The Trainer's "trees" candidate (components/modules/trees.py); TFX already depends on it.
    "scikit-learn",
    # Slice report: confusion-matrix heatmaps and training curves as inline SVG, in a Jinja2
    # template; the Kubeflow spec is written as YAML.
    "matplotlib",
    "jinja2",
    "pyyaml",
    "wheel",
    "pip",
]

setup(
    name="shopbusy",
    version="0.1.0",
    description="TFX pipeline for the drone-delivery shop 'busy' classifier",
    python_requires="==3.10.*",
    # One top-level name: `shopbusy`. The curated schema, the bundled data and the report's
    # template ship inside it, so a wheel install runs as a checkout does.
    packages=find_packages(include=["shopbusy", "shopbusy.*"]),
    package_data={"shopbusy": ["schemas/*.pbtxt", "data/shops/*.csv", "results/templates/*.j2"]},
    install_requires=INSTALL_REQUIRES,
    # bench/ (make bench) runs the article's pandas script and samples process-tree memory.
    extras_require={"test": ["pytest", "pytest-timeout", "pytest-xdist", "hypothesis", "pandas", "psutil"]},
    entry_points={"console_scripts": ["shopbusy=shopbusy.cli:entry_point"]},
)
