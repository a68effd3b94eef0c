import pytest

from recexp.data import readers
from recexp.errors import DataError


def test_seqtxt(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("1 5 6 7\n2 6 5\n")
    df = readers.read_seqtxt(p)
    assert df["item"].tolist() == [5, 6, 7, 6, 5]
    assert df["timestamp"].tolist() == [0, 1, 2, 0, 1]


def test_seqtxt_malformed_line_names_file_and_line(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("1 5 6\n2 x 5\n")
    with pytest.raises(DataError, match=r"s.txt:2: expected integer item ids"):
        readers.read_seqtxt(p)


def test_atomic(tmp_path):
    p = tmp_path / "d.inter"
    p.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t3\t100\n1\t11\t4\t50\n")
    df = readers.read_atomic(p)
    assert df["timestamp"].tolist() == [100.0, 50.0]


def test_atomic_bad_timestamp(tmp_path):
    p = tmp_path / "d.inter"
    p.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t10\t100\n1\t11\tsoon\n")
    with pytest.raises(DataError, match=r"d.inter:3: expected a numeric timestamp"):
        readers.read_atomic(p)


def test_atomic_too_many_fields(tmp_path):
    p = tmp_path / "d.inter"
    p.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t10\t100\n1\t11\t5\t7\n")
    with pytest.raises(DataError, match=r"d.inter:3: expected 3 fields"):
        readers.read_atomic(p)


def test_movielens_formats(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::10::5::978300760\n1::11::3::978300761\n")
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n")
    assert readers.read_ml_dat(tmp_path / "ratings.dat")["item"].tolist() == ["10", "11"]
    assert readers.read_ml_udata(tmp_path / "u.data")["user"].tolist() == ["196"]
    assert readers.read_ml_csv(tmp_path / "ratings.csv")["timestamp"].tolist() == [1260759144.0]


def test_missing_file():
    with pytest.raises(DataError, match="nope.txt: file not found"):
        readers.read_seqtxt("nope.txt")


def test_pre_placed_archive_is_checked_before_use(tmp_path):
    from recexp.data.download import ensure_file, sha256_of
    from recexp.errors import DataError as _DataError

    (tmp_path / "downloads").mkdir()
    blob = tmp_path / "downloads" / "data.txt"
    blob.write_text("1 2 3\n")
    dl = {"url": "https://example.invalid/data.txt", "sha256": "0" * 64}
    with pytest.raises(_DataError, match="SHA-256 mismatch"):
        ensure_file(tmp_path, "d/data.txt", dl)
    assert not (tmp_path / "d" / "data.txt").exists()
    dl["sha256"] = sha256_of(blob)
    path, _ = ensure_file(tmp_path, "d/data.txt", dl)
    assert path.read_text() == "1 2 3\n"
    path.write_text("1 2 4\n")  # the placed copy edited: refused too
    with pytest.raises(_DataError, match="SHA-256 mismatch"):
        ensure_file(tmp_path, "d/data.txt", dl)


def test_split_cache_key_holds_the_file_identity(tmp_path):
    from recexp.data.prepare import _cache_key

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("1 2 3\n")
    b.write_text("1 2 3\n")
    ds = {"name": "x", "format": "seqtxt", "file": "ignored"}
    assert _cache_key(ds, {}, a) != _cache_key(ds, {}, b)
    key = _cache_key(ds, {}, a)
    a.write_text("1 2 3 4\n")
    assert _cache_key(ds, {}, a) != key


def test_attribute_files_that_are_not_utf8_or_not_integers_are_one_line(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_bytes(b'{"1": [1]}\xff\xfe')
    with pytest.raises(DataError, match="not UTF-8"):
        readers.read_item2attributes(bad)
    bad.write_text('{"1": ["x"]}')
    with pytest.raises(DataError, match="integer attribute ids"):
        readers.read_item2attributes(bad)
    item = tmp_path / "a.item"
    item.write_bytes(b"item_id:token\tclass:token_seq\n1\tcaf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        readers.read_atomic_item_tokens(item)
