"""The connection contract: URL rendering (properties) and real logins against PostgreSQL."""

from __future__ import annotations

import string
from urllib.parse import urlsplit

import psycopg
import pytest
from hypothesis import given, settings, strategies as st
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from components.connection import SECRET_KEYS, DatabaseConnection

PUNCTUATION_PASSWORD = string.punctuation + " tab\there é中文"


def test_url_uses_pooler_and_direct_url_never_does():
    c = DatabaseConnection("ep-1.aws.neon.tech", 5432, "app", "app", "pw", "require",
                           pooled_host="ep-1-pooler.aws.neon.tech")
    assert urlsplit(c.url()).hostname == "ep-1-pooler.aws.neon.tech"
    assert urlsplit(c.direct_url()).hostname == "ep-1.aws.neon.tech"
    assert c.env()["PGHOST"] == "ep-1.aws.neon.tech"


def test_secret_data_has_the_eight_keys_in_order():
    c = DatabaseConnection("h", 5432, "d", "u", "p", "disable")
    assert tuple(c.secret_data()) == SECRET_KEYS
    assert c.secret_data()["PGPORT"] == "5432"


def test_repr_hides_the_password():
    assert "hunter2" not in repr(DatabaseConnection("h", 5432, "d", "u", "hunter2"))


@pytest.mark.parametrize("field,value,message", [
    ("port", 0, "DatabaseConnection.port: 0 is not a TCP port"),
    ("sslmode", "required", "DatabaseConnection.sslmode: 'required' is not one of"),
    ("host", "", "DatabaseConnection.host: must not be empty"),
])
def test_bad_fields_are_named(field, value, message):
    kwargs = dict(host="h", port=5432, database="d", username="u", password="p")
    kwargs[field] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        DatabaseConnection(**kwargs)


def test_ipv6_hosts_are_bracketed():
    assert "@[::1]:5432/" in DatabaseConnection("::1", 5432, "d", "u", "p").url()


def test_options_are_rendered_and_cannot_override_sslmode():
    c = DatabaseConnection("h", 5432, "d", "u", "p", "require", options={"connect_timeout": "10"})
    assert conninfo_to_dict(c.url())["connect_timeout"] == "10"
    with pytest.raises(ValueError, match="sslmode"):
        DatabaseConnection("h", 5432, "d", "u", "p", options={"sslmode": "disable"})


printable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(user=printable, password=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                        max_size=60),
       database=printable, pooled=st.booleans())
def test_libpq_reads_back_exactly_what_went_in(user, password, database, pooled):
    c = DatabaseConnection("db.internal", 6432, database, user, password, "verify-full",
                           pooled_host="pool.internal" if pooled else None)
    for url in (c.url(), c.direct_url()):
        parsed = conninfo_to_dict(url)  # libpq's own parser
        assert parsed["user"] == user
        assert parsed.get("password", "") == password
        assert parsed["dbname"] == database
        assert parsed["sslmode"] == "verify-full"
        assert parsed["port"] == "6432"
        assert url.startswith("postgresql://")
        # RFC 3986: nothing but unreserved characters and %XX in userinfo and path.
        userinfo = url[len("postgresql://"):].rsplit("@", 1)[0]
        assert set(userinfo) <= set(string.ascii_letters + string.digits + "-._~%:")
    assert conninfo_to_dict(c.url())["host"] == ("pool.internal" if pooled else "db.internal")
    assert conninfo_to_dict(c.direct_url())["host"] == "db.internal"


# --- against a real server --------------------------------------------------------------------

LOGINS = [
    ("app", PUNCTUATION_PASSWORD),
    ("user with space", "pass word with spaces"),
    ("Ünïcødé_用户", "pässwörd-ß-中文-🙂"),
    ("p@ss:w/rd?#%", "@:/?#[]!$&'()*+,;=%"),
    ("plain", string.punctuation),
]


@pytest.fixture(scope="module")
def logins(postgres):
    """Roles and databases whose names and passwords are full of punctuation, spaces, non-ASCII."""
    made = []
    with psycopg.connect(postgres.superuser_conninfo, autocommit=True) as admin:
        for i, (user, password) in enumerate(LOGINS):
            database = f"db {i} / {user}"
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))
            made.append(DatabaseConnection(postgres.host, postgres.port, database, user, password, "disable"))
    return made


@pytest.mark.parametrize("index", range(len(LOGINS)))
def test_url_direct_url_and_env_log_in(logins, index, monkeypatch):
    c = logins[index]
    for url in (c.url(), c.direct_url()):
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user, current_database()").fetchone() == (c.username, c.database)
    for key, value in c.env().items():
        monkeypatch.setenv(key, value)
    with psycopg.connect("") as conn:  # libpq reads PG* from the environment
        assert conn.execute("select current_user").fetchone() == (c.username,)


def test_a_wrong_password_is_refused(logins):
    c = logins[0]
    import dataclasses

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dataclasses.replace(c, password=c.password + "x").url())
