"""The case store: SQLAlchemy models, the repository the pipeline uses, Alembic migrations, encryption at rest and
data-key rotation, and the data protection jobs on it: the retention schedule (`retention`) and erasure on
request (`erasure`).
"""
