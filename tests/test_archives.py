import io
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from har.archives import ArchiveError, extract, list_members
from har.datasets.ucf50 import extract_classes
from tests.rar4 import write_stored_rar

UCF50_MEMBERS = {
    "UCF50/TaiChi/v_TaiChi_g01_c01.avi": b"taichi-1",
    "UCF50/TaiChi/v_TaiChi_g02_c01.avi": b"taichi-2",
    "UCF50/Swing/v_Swing_g01_c01.avi": b"swing-1",
    "UCF50/Billiards/v_Billards_g01_c01.avi": b"billiards-1",
    "UCF50/readme.txt": b"not a clip",
}


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


WRITERS = {"zip": write_zip, "tar.gz": write_tar, "rar": write_stored_rar}


@pytest.mark.parametrize("suffix", WRITERS)
def test_extract_classes_takes_only_the_requested_class_folders(tmp_path, suffix):
    archive = WRITERS[suffix](tmp_path / f"UCF50.{suffix}", UCF50_MEMBERS)
    root = extract_classes(archive, tmp_path / "out", ["TaiChi", "Billiards"])
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == [
        "Billiards/v_Billards_g01_c01.avi",
        "TaiChi/v_TaiChi_g01_c01.avi",
        "TaiChi/v_TaiChi_g02_c01.avi",
    ]
    assert (root / "TaiChi" / "v_TaiChi_g02_c01.avi").read_bytes() == b"taichi-2"


@pytest.mark.parametrize("suffix", WRITERS)
@pytest.mark.parametrize("evil", ["../escape.avi", "UCF50/TaiChi/../../../escape.avi", "/tmp/absolute.avi"])
def test_path_traversal_refuses_the_whole_archive_before_writing(tmp_path, suffix, evil):
    members = {**UCF50_MEMBERS, evil: b"evil"}
    archive = WRITERS[suffix](tmp_path / f"evil.{suffix}", members)
    out = tmp_path / "deep" / "out"
    with pytest.raises(ArchiveError, match="outside the destination"):
        extract(archive, out)
    assert not out.exists()
    assert not (tmp_path / "deep" / "escape.avi").exists() and not Path("/tmp/absolute.avi").exists()


def test_links_are_refused(tmp_path):
    archive = write_stored_rar(tmp_path / "link.rar", UCF50_MEMBERS, symlinks={"UCF50/TaiChi/v_x.avi": "/etc/passwd"})
    with pytest.raises(ArchiveError, match="is a link"):
        extract(archive, tmp_path / "out")
    tar = tmp_path / "link.tar"
    with tarfile.open(tar, "w") as handle:
        info = tarfile.TarInfo("UCF50/TaiChi/v_y.avi")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        handle.addfile(info)
    with pytest.raises(ArchiveError, match="is a link"):
        extract(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_decompression_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("UCF50/TaiChi/v_TaiChi_g01_c01.avi", b"\0" * 50_000_000)
    with pytest.raises(ArchiveError, match="bomb"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_size_limit_is_checked_before_writing(tmp_path):
    archive = write_zip(tmp_path / "big.zip", UCF50_MEMBERS)
    with pytest.raises(ArchiveError, match="over the limit"):
        extract(archive, tmp_path / "out", max_bytes=10)
    assert not (tmp_path / "out").exists()


def test_unreadable_and_unknown_archives_raise_archive_error(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArchiveError, match="cannot be read"):
        list_members(broken)
    other = tmp_path / "data.7z"
    other.write_bytes(b"7z")
    with pytest.raises(ArchiveError, match="not a supported archive"):
        extract(other, tmp_path / "out")


def test_select_can_rename_and_skip(tmp_path):
    archive = write_zip(tmp_path / "a.zip", UCF50_MEMBERS)
    written = extract(archive, tmp_path / "out", select=lambda n: PurePosixPath(n.name) if n.suffix == ".txt" else None)
    assert written == [tmp_path / "out" / "readme.txt"]


def test_archive_without_the_requested_class_says_so(tmp_path):
    archive = write_zip(tmp_path / "a.zip", UCF50_MEMBERS)
    with pytest.raises(ValueError, match="HorseRace"):
        extract_classes(archive, tmp_path / "out", ["HorseRace"])
