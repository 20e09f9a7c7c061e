"""Integrations with other tools, each an optional extra (``rac_store.contrib.celery``)."""
