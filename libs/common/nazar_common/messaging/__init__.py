"""RabbitMQ: topology (declared in one place), publishing and consuming helpers."""
