"""The case store: SQLAlchemy models, the repository the pipeline uses, and Alembic migrations."""
