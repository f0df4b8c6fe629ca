"""No Docker engine runs here, so the Space's Dockerfile is kept consistent with the project by reading it."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def front_matter() -> dict:
    block = re.match(r"---\n(.*?)\n---\n", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    return dict(line.split(": ", 1) for line in block.splitlines())


def requirement(name: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if re.match(rf"{name}[<>=]", line):
            return line[len(name) :]
    raise AssertionError(f"{name} not in requirements.txt")


def test_readme_front_matter_declares_a_gpu_docker_space_on_the_apps_port():
    meta = front_matter()
    assert meta["sdk"] == "docker" and meta["app_port"] == "8501"
    assert meta["suggested_hardware"].split("-")[0] in ("t4", "l4", "a10g", "a100", "h100", "l40s")
    assert "--server.port=8501" in DOCKERFILE and "EXPOSE 8501" in DOCKERFILE


def test_dockerfile_installs_gpu_tensorflow_in_the_requirements_range_and_the_requirements():
    assert f'"tensorflow[and-cuda]{requirement("tensorflow")}"' in DOCKERFILE
    assert "-r requirements.txt" in DOCKERFILE and "COPY --chown=user requirements.txt" in DOCKERFILE


def test_dockerfile_runs_the_app_as_uid_1000_with_health_check_upload_limit_and_xsrf_off():
    assert "--uid 1000" in DOCKERFILE and "USER user" in DOCKERFILE
    assert re.search(r"HEALTHCHECK .*http://localhost:8501/_stcore/health", DOCKERFILE)
    assert '"streamlit", "run", "streamlit_app.py"' in DOCKERFILE and (ROOT / "streamlit_app.py").is_file()
    assert "--server.enableXsrfProtection=false" in DOCKERFILE and "--server.maxUploadSize=" in DOCKERFILE
    assert "unar" in DOCKERFILE  # RAR extraction for UCF50.rar


def test_local_config_keeps_xsrf_protection_and_caps_uploads():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] <= 500
    assert config["server"].get("enableXsrfProtection", True) is True


def test_dockerfile_makes_the_app_folder_owned_by_the_user_before_switching_to_it():
    # A WORKDIR that does not exist is created root-owned by builders other than BuildKit.
    made = DOCKERFILE.index("install -d -o user -g user /home/user/app")
    assert made < DOCKERFILE.index("USER user") < DOCKERFILE.index("WORKDIR /home/user/app")


def test_dockerfile_runs_the_app_under_tini_through_the_entrypoint():
    assert re.search(r"apt-get install .*\btini\b", DOCKERFILE)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "bash", "/home/user/app/docker/entrypoint.sh"]' in DOCKERFILE
    assert (ROOT / "docker" / "entrypoint.sh").is_file()
    # HAR_HOME is the entrypoint's choice; a fixed data or models dir in the image would override it.
    assert "HAR_DATA_DIR" not in DOCKERFILE and "HAR_MODELS_DIR" not in DOCKERFILE
    assert "HAR_PUBLIC=1" in DOCKERFILE  # a public Space: visitors get no server paths and no owner actions


def start(tmp_path, volume, **env):
    """Runs docker/entrypoint.sh for real with bash, with a temporary app folder, ending in `env`."""
    import os
    import subprocess
    import sys

    app = tmp_path / "app"
    (app / "data" / "demo" / "Walking").mkdir(parents=True, exist_ok=True)
    (app / "data" / "demo" / "Walking" / "v_Walking_g01_c01.avi").write_bytes(b"clip")
    os.utime(app / "data" / "demo" / "Walking" / "v_Walking_g01_c01.avi", ns=(1_000_000_123, 1_000_000_123))
    (app / "data" / "caches" / "demo-T20-S64").mkdir(parents=True, exist_ok=True)
    (app / "data" / "caches" / "demo-T20-S64" / "meta.json").write_text("{}")
    (app / "data" / "caches" / "UCF50-T20-S64").mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HAR_")}
    # The interpreter these tests run under, which has har's requirements (a `python` on PATH may not).
    environment.update(
        PYTHONPATH=str(ROOT), HAR_APP_DIR=str(app), HAR_VOLUME=str(volume), HAR_PYTHON=sys.executable, **env
    )
    result = subprocess.run(
        ["bash", str(ROOT / "docker" / "entrypoint.sh"), "env"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return variables, result.stderr


def test_entrypoint_keeps_data_and_models_on_a_writable_volume_and_seeds_the_demo(tmp_path):
    volume = tmp_path / "data"
    volume.mkdir()
    variables, _ = start(tmp_path, volume)
    assert variables["HAR_HOME"] == str(volume)
    assert (volume / "models").is_dir()
    clip = volume / "data" / "demo" / "Walking" / "v_Walking_g01_c01.avi"
    assert clip.read_bytes() == b"clip"
    assert clip.stat().st_mtime_ns == 1_000_000_123  # the demo cache's fingerprint holds the clips' times
    assert (volume / "data" / "caches" / "demo-T20-S64" / "meta.json").read_text() == "{}"
    assert sorted(path.name for path in (volume / "data" / "caches").iterdir()) == ["demo-T20-S64"]
    assert [path.name for path in volume.iterdir() if path.name.startswith(".har-write-test")] == []


def test_entrypoint_falls_back_to_the_app_folder_without_a_volume(tmp_path):
    variables, errors = start(tmp_path, tmp_path / "no-volume")
    assert variables["HAR_HOME"] == str(tmp_path / "app")
    assert "not writable" not in errors


def test_entrypoint_says_so_when_the_volume_cannot_be_written(tmp_path):
    # /proc/self is a folder that nobody, root included, can create files in: a read-only mount's stand-in.
    variables, errors = start(tmp_path, "/proc/self")
    assert variables["HAR_HOME"] == str(tmp_path / "app")
    assert "har: /proc/self is not writable" in errors


def test_entrypoint_keeps_a_home_that_was_set_explicitly(tmp_path):
    volume = tmp_path / "data"
    volume.mkdir()
    variables, _ = start(tmp_path, volume, HAR_HOME=str(tmp_path / "elsewhere"))
    assert variables["HAR_HOME"] == str(tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "models").is_dir() and not (volume / "models").exists()


def test_entrypoint_runs_the_start_up_tasks_on_the_repository_pretrained_folder(tmp_path):
    (tmp_path / "app" / "pretrained").mkdir(parents=True)
    (tmp_path / "app" / "pretrained" / "broken.zip").write_bytes(b"not a zip")
    variables, errors = start(tmp_path, tmp_path / "no-volume")
    assert f"pretrained run {tmp_path / 'app' / 'pretrained' / 'broken.zip'} not imported" in errors
    assert variables["HAR_HOME"] == str(tmp_path / "app")  # and the app starts all the same
