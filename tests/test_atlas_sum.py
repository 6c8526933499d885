"""components.atlas_sum against Atlas's own sums, against tampering, and against the committed file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components import atlas_sum

REPO = Path(__file__).resolve().parent.parent

# Test vector from ariga/atlas, sql/migrate/testdata/partial-checkpoint/: atlas.sum as of commit
# e4b4dbb6f40cd4b8bc8c7b4b7e9de7ec153496fa, its six .sql files as of that commit (1, 2, 4) and
# a7c9132f7279789389f592c38ee0c2c6ed4b2fab (3, 5, 6). Reproduced byte for byte: the sum is over bytes.
ATLAS_FILES = {
    "1_first.sql": "create table `tbl_1` (`col` int);\n",
    "2_second.sql": "create table `tbl_2` (`col` int);\n",
    "3_checkpoint.sql": "-- atlas:checkpoint\n\nCREATE TABLE `tbl_1` (`col` int);\nCREATE TABLE `tbl_2` (`col` int);\n",
    "4_fourth.sql": "create table `tbl_3` (`col` int);\n",
    "5_checkpoint.sql": ("-- atlas:checkpoint\n\nCREATE TABLE `tbl_1` (`col` int);\nCREATE TABLE `tbl_2` (`col` int);\n"
                         "create table `tbl_3` (`col` int);\n"),
    "6_sixth.sql": "CREATE TABLE `tbl_4` (`col` int);\n",
}
ATLAS_SUM = (
    "h1:POfbsH2G2GIXAZQ2CdPa5ufTxcLpcnperz/gX0Vw6Uk=\n"
    "1_first.sql h1:uJ2MyyeTqXx4rCqtRMQAvRrfsvdwmvsZ3LcadVvCdOc=\n"
    "2_second.sql h1:TLO00GtsqSi8o0ySoaofBqxemrElL8fHOs3IRnqYvB8=\n"
    "3_checkpoint.sql h1:LR4UjDYVtrRuHLN5GQwLAYnXrSf/iO70psY8hTmLmjw=\n"
    "4_fourth.sql h1:QvaneqKxg+3R+zNzCP/wW43XkECdHkUwEpxJKPICEP8=\n"
    "5_checkpoint.sql h1:syyuaJb/hoMRO7MJlv4AMhYqMCoSb8ZgcHENO8RqN3I=\n"
    "6_sixth.sql h1:JNhpyBtH7XKqGBNRHQ+AvM9IDpO08C3G/swWPHfLkfw=\n"
)


@pytest.fixture
def atlas_dir(tmp_path: Path) -> Path:
    for name, content in ATLAS_FILES.items():
        (tmp_path / name).write_bytes(content.encode())
    (tmp_path / "atlas.sum").write_bytes(ATLAS_SUM.encode())
    return tmp_path


def test_computes_atlas_sum_byte_for_byte(atlas_dir: Path) -> None:
    (atlas_dir / "atlas.sum").unlink()
    assert atlas_sum.write(atlas_dir) == ATLAS_SUM
    assert (atlas_dir / "atlas.sum").read_bytes() == ATLAS_SUM.encode()


def test_verifies_atlas_own_sum(atlas_dir: Path) -> None:
    atlas_sum.verify(atlas_dir)


def test_ignores_what_atlas_ignores(atlas_dir: Path) -> None:
    # Atlas hashes only top-level *.sql files: notes, other extensions and subdirectories don't count.
    (atlas_dir / "README.md").write_text("notes\n")
    (atlas_dir / "seed.sql.txt").write_text("select 1;\n")
    (atlas_dir / "sub").mkdir()
    (atlas_dir / "sub" / "7_nested.sql").write_text("select 1;\n")
    atlas_sum.verify(atlas_dir)


def test_tampered_file_names_the_first_edited_file(atlas_dir: Path) -> None:
    path = atlas_dir / "4_fourth.sql"
    path.write_bytes(path.read_bytes().replace(b"tbl_3", b"tbl_9"))
    with pytest.raises(atlas_sum.AtlasSumError, match=r"edited after hashing: 4_fourth\.sql\)"):
        atlas_sum.verify(atlas_dir)


def test_one_trailing_byte_is_detected(atlas_dir: Path) -> None:
    with (atlas_dir / "6_sixth.sql").open("ab") as f:
        f.write(b"\n")
    with pytest.raises(atlas_sum.AtlasSumError, match=r"6_sixth\.sql"):
        atlas_sum.verify(atlas_dir)


def test_added_file_is_named(atlas_dir: Path) -> None:
    (atlas_dir / "7_seventh.sql").write_text("create table `tbl_5` (`col` int);\n")
    with pytest.raises(atlas_sum.AtlasSumError, match=r"added without rehashing: 7_seventh\.sql"):
        atlas_sum.verify(atlas_dir)


def test_removed_file_is_named(atlas_dir: Path) -> None:
    (atlas_dir / "2_second.sql").unlink()
    with pytest.raises(atlas_sum.AtlasSumError, match=r"removed or renamed: 2_second\.sql"):
        atlas_sum.verify(atlas_dir)


def test_hand_edited_sum_file_is_rejected(atlas_dir: Path) -> None:
    # Editing an entry without fixing the header is what UnmarshalText rejects as a mismatch.
    text = ATLAS_SUM.replace("uJ2MyyeTqXx4", "AAAAAAAAAAAA")
    (atlas_dir / "atlas.sum").write_text(text)
    with pytest.raises(atlas_sum.AtlasSumError, match="edited by hand"):
        atlas_sum.verify(atlas_dir)


def test_malformed_sum_line_is_rejected(atlas_dir: Path) -> None:
    (atlas_dir / "atlas.sum").write_text(ATLAS_SUM + "garbage\n")
    with pytest.raises(atlas_sum.AtlasSumError, match="line 8 'garbage'"):
        atlas_sum.verify(atlas_dir)


def test_missing_sum_is_an_error_only_when_there_are_files(tmp_path: Path) -> None:
    atlas_sum.verify(tmp_path)
    (tmp_path / "1_a.sql").write_text("select 1;\n")
    with pytest.raises(atlas_sum.AtlasSumError, match="is missing"):
        atlas_sum.verify(tmp_path)


def test_not_a_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(atlas_sum.AtlasSumError, match="does not exist or is not a directory"):
        atlas_sum.verify(tmp_path / "nope")


def test_sum_ignore_directive_follows_atlas() -> None:
    # The cases of ariga/atlas sql/migrate/dir_test.go (TestLocalDir): a first-line
    # "atlas:sum ignore" drops the file's entry; "atlas:sum" alone does not.
    files = [("exclude_1.sql", b"//atlas:sum ignore\nbar"), ("exclude_2.sql", b"atlas:sum ignore"),
             ("include.sql", b"//atlas:sum\nfoo")]
    entries = atlas_sum.compute(files)
    assert [e.name for e in entries] == ["include.sql"]
    # The ignored files' names still feed the chain, as in NewHashFile.
    assert entries != atlas_sum.compute([("include.sql", b"//atlas:sum\nfoo")])
    # A directive below the first line is content, not a directive.
    assert [e.name for e in atlas_sum.compute([("a.sql", b"select 1;\n-- atlas:sum ignore\n")])] == ["a.sql"]


def test_committed_migrations_sum_is_current() -> None:
    files = atlas_sum.migration_files(REPO / "migrations")
    assert len(files) >= 2
    assert atlas_sum.render(atlas_sum.compute(files)) == (REPO / "migrations" / "atlas.sum").read_text()


def test_cli_verify_and_write(atlas_dir: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "components.atlas_sum", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    ok = run("verify", str(atlas_dir))
    assert ok.returncode == 0, ok.stderr
    (atlas_dir / "6_sixth.sql").write_text("CREATE TABLE `tbl_5` (`col` int);\n")
    bad = run("verify", str(atlas_dir))
    assert bad.returncode == 1
    assert "edited after hashing: 6_sixth.sql" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert run("write", str(atlas_dir)).returncode == 0
    atlas_sum.verify(atlas_dir)
    assert run("frobnicate", str(atlas_dir)).returncode == 2
