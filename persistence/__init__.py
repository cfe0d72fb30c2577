"""SQLModel tables and queries, alembic migrations, object storage."""
