"""SQLAlchemy storage: SQLite through aiosqlite by default, PostgreSQL through asyncpg."""
