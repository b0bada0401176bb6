"""A wheel of the project, installed without the checkout beside it (not editable), runs the
bundled pipeline: the schema, the bundled data and the report template ship inside the one
top-level package, `shopbusy`."""

import os
import shutil
import subprocess
import sys
import zipfile

from tests.helpers import REPO_ROOT


def test_a_wheel_install_runs_the_bundled_pipeline_from_its_own_files(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(os.path.join(REPO_ROOT, "shopbusy"), source / "shopbusy", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(REPO_ROOT, name), source)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, source],
        check=True,
        timeout=300,
    )
    [wheel] = wheels.iterdir()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"shopbusy", "shopbusy-0.1.0.dist-info"}
    for shipped in ("shopbusy/schemas/schema.pbtxt", "shopbusy/data/shops/shops.csv", "shopbusy/results/templates/report.html.j2"):
        assert shipped in names

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel], check=True, timeout=300
    )
    env = dict(os.environ, PYTHONPATH=str(site))  # ahead of the checkout's editable install
    where = subprocess.run(
        [sys.executable, "-c", "import shopbusy; print(shopbusy.__file__)"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr

    workdir = tmp_path / "workdir"
    result = subprocess.run(
        [sys.executable, "-m", "shopbusy.cli", "run", "--workdir", workdir, "--epochs", "2", "--restarts", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode in (0, 3), result.stdout + result.stderr  # ran to a verdict
    assert f"rows from {site}" in result.stdout  # the bundled data of the installed package
    assert "Slice report:" in result.stdout and "could not write the slice report" not in result.stderr
    assert os.path.exists(workdir / "report" / "latest.html")
