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
