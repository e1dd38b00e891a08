"""Database access: connection pool, migrations, the time-series storage backends."""
