"""Least-privilege database roles: migrations run as the owner of the tables, the services as a role that owns
nothing and may only INSERT and SELECT the audit record (``ehs db roles``).

A role that owns ``audit_entry`` can disable its append-only trigger and rewrite history; a role that only holds
INSERT and SELECT on it cannot (ALTER TABLE needs ownership; UPDATE, DELETE and TRUNCATE need privileges it does
not have). Run this as the owner (the role that runs ``ehs migrate``) after every migration that adds tables:
it grants on every table present, and default privileges cover tables the same owner creates later.

Creating a role needs CREATEROLE or superuser. Without it, have a DBA run ``CREATE ROLE ehs_app LOGIN PASSWORD
'...'`` once; this step then only grants. Point the services at the service role (``EHS_DATABASE_URL``) and the
migrations (``ehs migrate``, docker-compose's migrate service) at the owner.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

#: Tables the services may read and append to, never change.
APPEND_ONLY = ("audit_entry",)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def setup_service_role(conn: psycopg.Connection, *, role: str, password: str | None = None) -> list[str]:
    """Create ``role`` if missing (when allowed) and grant it what the services need; return what was done.

    Run by the owner of the tables, in the caller's transaction.
    """
    if not _NAME.match(role):
        raise ValueError("a role name is lower-case letters, digits and _ (at most 63)")
    owner = conn.execute("SELECT current_user").fetchone()[0]
    if role == owner:
        raise ValueError("the service role must not be the owner that runs migrations")
    done = []
    ident = sql.Identifier(role)
    if not _exists(conn, role):
        can = conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if not can:
            raise PermissionError(
                f"role {role} does not exist and {owner} may not create roles: have a DBA run "
                f"CREATE ROLE {role} LOGIN PASSWORD '...'; then run this again"
            )
        statement = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(ident)
        if password:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
        conn.execute(statement)
        done.append(f"created role {role}")
    if conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]:
        raise ValueError(f"{role} is a superuser: it could rewrite anything; use a plain role")
    database = sql.Identifier(conn.info.dbname)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relname NOT LIKE '\\_yoyo%' "
            "AND c.relname NOT LIKE 'yoyo%'"
        ).fetchall()
    ]
    for statement in (
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, ident),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(ident),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
        sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {}").format(ident),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(ident),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}").format(
            ident
        ),
    ):
        conn.execute(statement)
    for table in tables:
        name = sql.Identifier(table)
        if table in APPEND_ONLY:
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, ident))
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON TABLE {} TO {}").format(name, ident))
        else:
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {}").format(name, ident))
    # the migrations' bookkeeping is the owner's alone
    for table in [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND (tablename LIKE '\\_yoyo%' OR tablename LIKE 'yoyo%')"
        )
    ]:
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(table), ident))
    done.append(
        f"granted {role} read/write on {len(tables) - len(APPEND_ONLY)} tables, "
        f"SELECT and INSERT only on {', '.join(APPEND_ONLY)}"
    )
    return done


def check_service_role(conn: psycopg.Connection, *, role: str) -> list[str]:
    """What is wrong with ``role`` as a service role (empty: it cannot rewrite the audit record)."""
    wrong = []
    row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if row is None:
        return [f"no role {role}"]
    if row[0]:
        wrong.append(f"{role} is a superuser")
    for table in APPEND_ONLY:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = %s", (table,)
        ).fetchone()
        if owner and (
            owner[0] == role or conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (role, owner[0])).fetchone()[0]
        ):
            wrong.append(f"{role} owns {table} (or is a member of its owner)")
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            if conn.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)).fetchone()[0]:
                wrong.append(f"{role} may {privilege} {table}")
    return wrong
