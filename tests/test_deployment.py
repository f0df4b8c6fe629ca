"""No Docker engine runs here, so the Space's Dockerfile is kept consistent with the project by reading it."""

import re
import tomllib
from pathlib import Path

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
