"""HAR_HOME and whether the models dir survives a restart, read from a mount table."""

from pathlib import Path

from har import config, storage

MOUNTS = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 0:30 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
40 27 0:41 / /data rw,relatime - fuse.hf-mount hf rw,user_id=1000
41 27 0:42 / /my\\040disk rw,relatime shared:5 - ext4 /dev/vdb rw
"""


def test_har_home_puts_data_and_models_under_one_folder_and_the_specific_settings_win(monkeypatch, tmp_path):
    for name in ("HAR_HOME", "HAR_DATA_DIR", "HAR_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert (config.data_dir(), config.models_dir()) == (Path("data"), Path("models"))
    monkeypatch.setenv("HAR_HOME", str(tmp_path))
    assert (config.data_dir(), config.models_dir()) == (tmp_path / "data", tmp_path / "models")
    monkeypatch.setenv("HAR_MODELS_DIR", "/elsewhere/models")
    assert (config.data_dir(), config.models_dir()) == (tmp_path / "data", Path("/elsewhere/models"))
    assert config.data_dir("given") == Path("given")


def test_the_mount_holding_a_path_is_the_longest_matching_mount_point(tmp_path):
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTS)
    assert storage.mount_of("/data/models/run", table) == (Path("/data"), "fuse.hf-mount")
    assert storage.mount_of("/database", table) == (Path("/"), "overlay")
    assert storage.mount_of("/my disk/models", table) == (Path("/my disk"), "ext4")


def test_models_on_the_containers_overlay_are_not_persistent_and_the_reason_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("HAR_STORAGE_PERSISTENT", raising=False)
    monkeypatch.setattr(storage, "mount_of", lambda path: (Path("/"), "overlay"))
    status = storage.status(tmp_path / "data", tmp_path / "models")
    assert status["persistent"] is False and status["writable"] is True
    assert "overlay" in status["reason"] and "Storage Bucket" in status["reason"] and "/data" in status["reason"]
    assert status["models_dir"] == str(tmp_path / "models")


def test_models_on_a_mounted_volume_are_persistent(monkeypatch, tmp_path):
    monkeypatch.delenv("HAR_STORAGE_PERSISTENT", raising=False)
    monkeypatch.setenv("HAR_HOME", str(tmp_path))
    monkeypatch.setattr(storage, "mount_of", lambda path: (Path("/data"), "fuse.hf-mount"))
    status = storage.status()
    assert status["home"] == str(tmp_path) and status["persistent"] is True
    assert (
        status["reason"] == f"the models dir {tmp_path / 'models'} is on the fuse.hf-mount filesystem mounted at /data."
    )


def test_the_real_mount_table_is_read(tmp_path):
    mount, filesystem = storage.mount_of(tmp_path)
    assert mount in [tmp_path, *tmp_path.parents] and filesystem != "unknown"


def test_a_models_dir_that_cannot_be_written_is_not_persistent(monkeypatch, tmp_path):
    monkeypatch.setenv("HAR_STORAGE_PERSISTENT", "1")
    (tmp_path / "file").write_text("in the way")
    status = storage.status(tmp_path / "data", tmp_path / "file" / "models")
    assert status["writable"] is False and status["persistent"] is False
    assert "cannot be written" in status["reason"]


def test_the_environment_can_say_what_the_mount_table_cannot(monkeypatch, tmp_path):
    monkeypatch.setenv("HAR_STORAGE_PERSISTENT", "0")
    status = storage.status(tmp_path / "data", tmp_path / "models")
    assert status["persistent"] is False and "HAR_STORAGE_PERSISTENT=0" in status["reason"]
